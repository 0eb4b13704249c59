package actors

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/messages"
)

func newPeerID(t *testing.T) string {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// Every command that would save the book is refused, and the unreadable
// file is left exactly as it was.
func TestCorruptDeviceBookIsRefusedNotOverwritten(t *testing.T) {
	h := &home.Home{Dir: t.TempDir()}
	path := filepath.Join(h.Dir, "devices.json")
	corrupt := []byte(`{"devices": [{"peerId": "12D3KooW` + "\x00" + `truncated by a full disk`)
	if err := os.WriteFile(path, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := StartNode(NodeConfig{Home: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)

	const timeout = 5 * time.Second
	asks := []struct {
		name string
		ask  func() error
	}{
		{"add", func() error {
			_, err := n.AddDevice(&messages.DeviceAdd{PeerId: newPeerID(t), Alias: "laptop"}, timeout)
			return err
		}},
		{"trust", func() error {
			_, err := n.TrustDevice(&messages.DeviceTrust{Device: newPeerID(t), Role: RoleAdmin}, timeout)
			return err
		}},
		{"clear peer", func() error { _, err := n.ClearPeer(timeout); return err }},
		{"list", func() error { _, err := n.ListDevices(timeout); return err }},
	}
	for _, a := range asks {
		err := a.ask()
		if err == nil {
			t.Fatalf("%s on an unreadable address book succeeded", a.name)
		}
		for _, want := range []string{path, "not valid JSON", "move it aside"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %q", a.name, err, want)
			}
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, corrupt) {
		t.Fatalf("the unreadable address book was overwritten:\nwas %q\nnow %q", corrupt, got)
	}
}

func TestCheckDeviceBook(t *testing.T) {
	h := &home.Home{Dir: t.TempDir()}
	path := filepath.Join(h.Dir, "devices.json")
	if err := CheckDeviceBook(h); err != nil {
		t.Fatalf("a home without an address book yet: %v", err)
	}

	os.WriteFile(path, []byte("{not json"), 0o600)
	err := CheckDeviceBook(h)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("corrupt book: got %v, want an error naming %s as not valid JSON", err, path)
	}

	// A read that fails for another reason than a missing file (here a
	// folder in its place, which fails for root too, unlike a chmod).
	os.Remove(path)
	os.Mkdir(path, 0o700)
	err = CheckDeviceBook(h)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "cannot be read") {
		t.Fatalf("unreadable book: got %v, want an error naming %s as unreadable", err, path)
	}
	os.Remove(path)

	os.WriteFile(path, []byte(`{"devices":[{"peerId":"`+newPeerID(t)+`","alias":"b"}]}`), 0o600)
	if err := CheckDeviceBook(h); err != nil {
		t.Fatalf("a valid book: %v", err)
	}
}

// The same guard on the actor: a folder where devices.json should be is not
// replaced by a saved empty book.
func TestUnreadableDeviceBookIsNotReplaced(t *testing.T) {
	h := &home.Home{Dir: t.TempDir()}
	path := filepath.Join(h.Dir, "devices.json")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(path, "kept")
	os.WriteFile(marker, []byte("x"), 0o600)
	n, err := StartNode(NodeConfig{Home: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	_, err = n.AddDevice(&messages.DeviceAdd{PeerId: newPeerID(t), Alias: "laptop"}, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Fatalf("device add on an unreadable book: got %v, want a refusal saying it cannot be read", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("what stood at %s was touched: %v", path, err)
	}
}

func TestReadableDeviceBookStillLoadsAndSaves(t *testing.T) {
	h := &home.Home{Dir: t.TempDir()}
	id := newPeerID(t)
	path := filepath.Join(h.Dir, "devices.json")
	os.WriteFile(path, []byte(`{"devices":[{"peerId":"`+id+`","alias":"server","dial":false}]}`), 0o600)
	n, err := StartNode(NodeConfig{Home: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	res, err := n.ResolveDevice(&messages.DeviceResolve{Device: "server"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.PeerId; got != id {
		t.Fatalf("resolved server to %s, want %s", got, id)
	}
	if _, err := n.RenameDevice(&messages.DeviceRename{Device: "server", Alias: "home-server"}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), `"home-server"`) {
		t.Fatalf("rename not saved: %s", data)
	}
}
