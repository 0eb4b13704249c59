package component_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/tetratelabs/wazero"

	"github.com/fungi-go/fungi/runtimes/wasm/component"
)

// Serve a wasi:http component, or run a wasi:cli command, from its bytes.
func Example() {
	ctx := context.Background()
	bin, err := os.ReadFile("hello_wasi_http.wasm")
	if err != nil {
		log.Fatal(err)
	}
	if !component.IsComponent(bin) {
		log.Fatal("a core module: run it as WASI preview 1 instead")
	}
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	c, err := component.Compile(ctx, rt, bin) // refuses missing imports by name
	if err != nil {
		log.Fatal(err)
	}
	cfg := component.Config{
		Env:      map[string]string{"GREETING": "hello"},
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Preopens: []component.Preopen{{HostPath: "data", GuestPath: "/data"}},
	}
	switch c.Kind() {
	case component.KindHTTP:
		log.Fatal(http.ListenAndServe("127.0.0.1:8080", c.Handler(cfg)))
	case component.KindCommand:
		code, err := c.Run(ctx, cfg)
		fmt.Println("exit", code, err)
	}
}

func ExampleIsComponent() {
	fmt.Println(component.IsComponent([]byte{0, 'a', 's', 'm', 0x0d, 0, 1, 0}))
	fmt.Println(component.IsComponent([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}))
	// Output:
	// true
	// false
}
