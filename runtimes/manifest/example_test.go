package manifest_test

import (
	"fmt"

	"github.com/fungi-go/fungi/runtimes/manifest"
)

func ExampleParse() {
	m, err := manifest.Parse([]byte(`apiVersion: fungi.dev/v1alpha1
kind: ServiceManifest
metadata: {name: hello}
spec:
  runtime: wasm
  source: {file: hello.wasm}
  ports: [{name: http}]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Spec.Runtime, m.Spec.Ports[0].HostPort, m.Spec.Restart)

	_, err = manifest.Parse([]byte("apiVersion: fungi.dev/v1alpha1\nkind: ServiceManifest\nmetadata: {name: Hello}\nspec: {runtime: wasm, source: {file: a.wasm}}\n"))
	fmt.Println(err)
	// Output:
	// wasmtime auto on-failure
	// invalid manifest: line 3, column 18: metadata.name: "Hello" is not a valid name: use lower-case letters, digits and hyphens, starting and ending with a letter or digit
}
