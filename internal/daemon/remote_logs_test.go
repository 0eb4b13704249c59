package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/daemon/daemontest"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
)

// `peer admin service logs -f` keeps nothing on the serving node once the
// controller leaves: no goroutine, no open log file. Before, every follow
// a controller left held both until the daemon stopped.
func TestRemoteFollowEndsWhenControllerLeaves(t *testing.T) {
	wasm := testutil.BuildWasm(t, "examples/apps/filebrowser-lite")
	a := daemontest.Start(t, daemontest.Options{}).API
	nb := daemontest.Start(t, daemontest.Options{})
	b, infoB := nb.API, nb.Info
	infoA, err := a.Info(context.Background(), &messages.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := a.AddDevice(ctx, &messages.DeviceAdd{PeerId: infoB.PeerId, Alias: "node-b", Addrs: infoB.Addrs}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.TrustDevice(ctx, &messages.DeviceTrust{Device: infoA.PeerId, Role: "admin"}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	data, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "app.wasm"), data, 0o644)
	manifest := "apiVersion: fungi.dev/v1alpha1\nkind: ServiceManifest\nmetadata: {name: logsvc}\nspec:\n  runtime: wasmtime\n  source: {file: app.wasm}\n  ports:\n    - {name: http, hostPort: auto, servicePort: 80, protocol: tcp}\n"
	pull, err := b.Pull(ctx, &messages.PullServiceRequest{ManifestYaml: []byte(manifest), ManifestDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testutil.RecvAll(pull); err != nil {
		t.Fatalf("pull: %v", err)
	}
	if _, err := b.Start(ctx, &messages.StartService{Name: "logsvc"}); err != nil {
		t.Fatal(err)
	}

	logs := func(ctx context.Context, follow bool) (messages.Daemon_RemoteClient, error) {
		return a.Remote(ctx, &messages.RemoteRequest{Device: "node-b", Request: &messages.Envelope{Body: &messages.Envelope_Logs{Logs: &messages.LogsRequest{Name: "logsvc", Tail: 10, Follow: follow}}}})
	}
	// Warm: the peer connection and the first log read.
	warm, err := logs(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testutil.RecvAll(warm); err != nil {
		t.Fatalf("remote logs: %v", err)
	}
	baseFDs, baseGoroutines := testutil.FDCount(), runtime.NumGoroutine()

	const follows = 8
	var cancels []context.CancelFunc
	for range follows {
		fctx, cancel := context.WithCancel(ctx)
		cancels = append(cancels, cancel)
		st, err := logs(fctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil { // the tail: the follow runs on node B
			t.Fatalf("follow: %v", err)
		}
	}
	if fds := testutil.FDCount(); fds < baseFDs+follows {
		t.Fatalf("%d follows running hold %d fds over the baseline; each should hold its log file", follows, fds-baseFDs)
	}
	for _, cancel := range cancels { // the controller leaves
		cancel()
	}
	testutil.WaitFor(t, 60*time.Second, "node B to end the follows the controller left", func() error {
		fds, gs := testutil.FDCount(), runtime.NumGoroutine()
		if fds > baseFDs || gs > baseGoroutines+5 {
			return fmt.Errorf("%d fds (baseline %d), %d goroutines (baseline %d)", fds, baseFDs, gs, baseGoroutines)
		}
		return nil
	})
}
