package access

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/fungi-go/fungi/internal/testutil"
)

// The go-yamux fork (third_party/go-yamux, FORK.md) is upstream at one
// version plus fungi's changes. When go-libp2p moves to another go-yamux,
// the fork must be rebased onto it, or fungi would build go-libp2p against
// a muxer it was not released with.
func TestYamuxForkMatchesLibp2p(t *testing.T) {
	root := testutil.RepoRoot()
	raw, err := os.ReadFile(filepath.Join(root, "third_party", "go-yamux", "version.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fork struct{ Version string }
	if err := json.Unmarshal(raw, &fork); err != nil || fork.Version == "" {
		t.Fatalf("third_party/go-yamux/version.json: no version (%v)", err)
	}

	goCmd := func(args ...string) string {
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	libp2p := strings.TrimSpace(goCmd("list", "-m", "-f", "{{.Version}}", "github.com/libp2p/go-libp2p"))
	// go-libp2p's own requirement, from the module graph (not fungi's
	// go.mod line, which may lag or lead).
	var required string
	prefix := "github.com/libp2p/go-libp2p@" + libp2p + " github.com/libp2p/go-yamux/v5@"
	for _, line := range strings.Split(goCmd("mod", "graph"), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			required = v
		}
	}
	if required == "" {
		t.Fatalf("go-libp2p %s requires no github.com/libp2p/go-yamux/v5: it changed muxer major version; rebase the fork (third_party/go-yamux/FORK.md) onto what it requires now", libp2p)
	}
	t.Logf("go-libp2p %s requires go-yamux %s; the fork's base is %s", libp2p, required, fork.Version)
	if required != fork.Version {
		t.Errorf("go-libp2p %s requires go-yamux %s but third_party/go-yamux is %s plus fungi's changes: rebase the fork onto %s (third_party/go-yamux/FORK.md says how)", libp2p, required, fork.Version, required)
	}
	selected := strings.TrimSpace(goCmd("list", "-m", "-f", "{{.Version}}", "github.com/libp2p/go-yamux/v5"))
	if selected != fork.Version {
		t.Errorf("go.mod selects go-yamux %s but the fork is %s: rebase the fork onto %s and set both to it", selected, fork.Version, selected)
	}
}

// transport/access/deliver.go reaches the yamux stream under libp2p's swarm stream
// through its unexported field `stream` (reflect and unsafe: libp2p has no
// accessor). If a go-libp2p upgrade renames, retypes or removes it,
// delivery from the receive loop would silently turn off; this fails
// instead, naming what moved. TestYamuxStreamOf checks the same on live
// streams, including the host's wrapper.
func TestSwarmStreamFieldForDeliver(t *testing.T) {
	st := reflect.TypeOf(swarm.Stream{})
	f, ok := st.FieldByName("stream")
	if !ok {
		t.Fatalf("go-libp2p upgrade: %s has no field `stream` any more; transport/access/deliver.go (innerStream) cannot reach the yamux stream, so update it to where go-libp2p keeps the muxed stream now", st)
	}
	if f.Type != reflect.TypeOf((*network.MuxedStream)(nil)).Elem() {
		t.Fatalf("go-libp2p upgrade: %s.stream is %s, not network.MuxedStream; update innerStream in transport/access/deliver.go", st, f.Type)
	}
	if f.Anonymous || f.IsExported() {
		t.Logf("%s.stream is now exported or embedded: deliver.go's unsafe read may no longer be needed", st)
	}
}
