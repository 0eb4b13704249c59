package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
)

// releaseSizeLimit is the most the stripped linux/amd64 release binary may
// weigh: 32 MB (it is 29.7 MB). The peer host links only the libp2p
// transports fungi uses, and nothing in the binary calls reflect's
// Method or MethodByName with a name the linker cannot see: one such call
// makes the linker keep every exported method of every type, 4.5 MB here.
// Upstream kong makes such calls in Parse and Run, so fungi parses with
// its own parse (parse.go); TestReleaseBinary names any call that comes
// back.
const releaseSizeLimit = 32_000_000

// versionLimit is how long `fungi --version` may take, median of a few
// runs. Only `make size` (FUNGI_STRICT_TIMING=1, nothing else running)
// holds the binary to it: on this 2-core machine under `make test`'s
// parallel packages a single exec varies by tens of milliseconds, so the
// suite checks a bound that only a real regression (work at start-up,
// such as a network or disk call in an init) crosses.
const (
	versionLimit       = 20 * time.Millisecond
	versionLimitLoaded = 150 * time.Millisecond
)

// TestReleaseBinary builds fungi as `make dist` does for linux/amd64 and
// checks its size, that the linker saw no reflect method lookup by a
// non-constant name, and how fast it answers --version.
func TestReleaseBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the release binary")
	}
	bin := filepath.Join(t.TempDir(), "fungi")
	// The same tags and flags as the Makefile's dist target, without the
	// version stamp (a few bytes). -dumpdep only prints the linker's
	// reachability graph, marking the functions that look methods up by
	// name.
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "grpcnotrace", "-ldflags", "-s -w -dumpdep", "-o", bin, "./cmd/fungi")
	cmd.Dir = testutil.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for edge := range strings.Lines(string(out)) {
		// An edge into a marked function from an unmarked one is a call
		// that needs mending; edges among marked ones follow from it.
		if strings.HasSuffix(edge, "<ReflectMethod>\n") && !strings.Contains(edge, "<ReflectMethod> ->") {
			t.Errorf("looks a method up by a name the linker cannot see, so every exported method stays (see parse.go): %s", strings.TrimSpace(edge))
		}
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stripped linux/amd64 release binary: %d bytes (%.1f MB)", st.Size(), float64(st.Size())/1e6)
	if st.Size() > releaseSizeLimit {
		t.Errorf("release binary is %d bytes, over the %d limit; see what grew with `go tool nm -size -sort size` on an unstripped build", st.Size(), releaseSizeLimit)
	}

	// The first run pages the binary in; it is not counted.
	if out, err := exec.Command(bin, "--version").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("fungi --version: %v: %q", err, out)
	}
	var runs []time.Duration
	for range 11 {
		start := time.Now()
		if err := exec.Command(bin, "--version").Run(); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, time.Since(start))
	}
	slices.Sort(runs)
	median := runs[len(runs)/2]
	limit := versionLimitLoaded
	if os.Getenv("FUNGI_STRICT_TIMING") == "1" {
		limit = versionLimit
	}
	t.Logf("fungi --version: median %v of %d runs (fastest %v, slowest %v), limit %v", median, len(runs), runs[0], runs[len(runs)-1], limit)
	if median > limit {
		t.Errorf("fungi --version took %v (median), over %v", median, limit)
	}
}

// TestReleaseDeps keeps out of the binary what the size work took out:
// libp2p's root and config packages (they link WebRTC, WebTransport,
// WebSocket and fx for transports fungi never uses; transport/node.go
// builds the host from parts) and text/template (its reflection keeps
// every exported method alive).
func TestReleaseDeps(t *testing.T) {
	cmd := exec.Command("go", "list", "-tags", "grpcnotrace", "-deps", "./cmd/fungi")
	cmd.Dir = testutil.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	banned := []string{
		"github.com/libp2p/go-libp2p",
		"github.com/libp2p/go-libp2p/config",
		"github.com/libp2p/go-libp2p/p2p/transport/webrtc",
		"github.com/libp2p/go-libp2p/p2p/transport/websocket",
		"github.com/libp2p/go-libp2p/p2p/transport/webtransport",
		"go.uber.org/fx",
		"text/template",
	}
	for _, p := range strings.Fields(string(out)) {
		if slices.Contains(banned, p) {
			t.Errorf("the fungi binary links %s", p)
		}
	}
}
