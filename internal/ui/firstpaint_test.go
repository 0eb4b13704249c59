package ui_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/internal/ui"
	"github.com/fungi-go/fungi/messages"
)

// TestBrowserFirstPaint50 opens the login link of a node with 50 services
// and reports how long the page takes to show the whole services table,
// measured in the browser from the start of the navigation. It reports;
// it asserts only that all 50 rows show.
func TestBrowserFirstPaint50(t *testing.T) {
	ctx := browser(t)
	n := startNode(t)
	wasm, err := os.ReadFile(testutil.BuildWasm(t, "examples/apps/filebrowser-lite"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	for i := range 50 {
		m := fmt.Sprintf("apiVersion: fungi.dev/v1alpha1\nkind: ServiceManifest\nmetadata: {name: svc-%02d}\nspec:\n  runtime: wasmtime\n  source: {file: app.wasm}\n  ports:\n    - {name: http, hostPort: auto, protocol: tcp}\n", i)
		stream, err := n.api.Pull(context.Background(), &messages.PullServiceRequest{ManifestYaml: []byte(m), Artifact: wasm, ArtifactSha256: hex.EncodeToString(sum[:])})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := stream.Recv(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("pull svc-%02d: %v", i, err)
			}
		}
	}
	t0 := time.Now()
	run(t, ctx, "open the login link", chromedp.Navigate(ui.LoginLink(n.token, n.addr, time.Now())))
	waitJS(t, ctx, "50 rows", `document.querySelectorAll('#services tbody tr').length === 50 && window.fungiFirstPaint > 0`)
	wall := time.Since(t0)
	paint := eval[float64](t, ctx, "the first paint", `window.fungiFirstPaint`)
	t.Logf("login link -> services table with 50 services: %.0f ms in the browser (navigation start to table); %d ms seen from the test", paint, wall.Milliseconds())
}
