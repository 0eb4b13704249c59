package ui_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
)

// pullWasm pulls the example wasm app under name through the daemon's API,
// as the CLI does, and waits for the pull to finish.
func pullWasm(t *testing.T, n *node, name string) {
	t.Helper()
	wasm, err := os.ReadFile(testutil.BuildWasm(t, "examples/apps/filebrowser-lite"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	m := fmt.Sprintf("apiVersion: fungi.dev/v1alpha1\nkind: ServiceManifest\nmetadata: {name: %s}\nspec:\n  runtime: wasmtime\n  source: {file: app.wasm}\n  ports:\n    - {name: http, hostPort: auto, protocol: tcp}\n", name)
	stream, err := n.api.Pull(context.Background(), &messages.PullServiceRequest{ManifestYaml: []byte(m), Artifact: wasm, ArtifactSha256: hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testutil.RecvAll(stream); err != nil {
		t.Fatalf("pull %s: %v", name, err)
	}
}
