package actors

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport"
)

// closedTCPAddr is a loopback TCP address nobody listens on.
func closedTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)
}

// deviceHost is a real libp2p host on loopback that trusts trusting.
func deviceHost(t *testing.T, trusting ...peer.ID) host.Host {
	t.Helper()
	priv, _, _ := crypto.GenerateEd25519Key(nil)
	g := transport.NewTrustGate()
	h, err := transport.NewHost(priv, []string{"/ip4/127.0.0.1/tcp/0"}, g, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	roles := map[peer.ID]string{}
	for _, p := range trusting {
		roles[p] = RoleAccess
	}
	g.Set(roles, map[peer.ID]bool{})
	return h
}

// startBookNode starts a node on a real libp2p host whose home holds book
// as its devices.json, written as an earlier run of the daemon left it.
func startBookNode(t *testing.T, priv crypto.PrivKey, book string) (*Node, *home.Home) {
	t.Helper()
	h := &home.Home{Dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(h.Dir, "devices.json"), []byte(book), 0o600); err != nil {
		t.Fatal(err)
	}
	g := transport.NewTrustGate()
	lh, err := transport.NewHost(priv, []string{"/ip4/127.0.0.1/tcp/0"}, g, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lh.Close() })
	n, err := StartNode(NodeConfig{Home: h, Network: &transport.Network{Host: lh, Gate: g}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n, h
}

// waitBook polls the node's book until check passes for the device.
func waitBook(t *testing.T, n *Node, device string, within time.Duration, check func(*messages.Device) error) {
	t.Helper()
	err := testutil.Poll(within, func() error {
		res, err := n.ResolveDevice(&messages.DeviceResolve{Device: device}, 5*time.Second)
		if err != nil {
			return err
		}
		return check(res)
	})
	if err != nil {
		t.Fatalf("device %s after %s: %v", device, within, err)
	}
}

// A typed address that has failed for days, while the device now answers
// at another one, leaves the book, on disk too; one that began failing an
// hour ago stays. The failures are the book's own record from earlier
// runs; the answer is a real dial of a real host.
func TestDeadAddressLeavesTheBook(t *testing.T) {
	priv, _, _ := crypto.GenerateEd25519Key(nil)
	self, _ := peer.IDFromPrivateKey(priv)
	device := deviceHost(t, self)
	live := device.Addrs()[0].String()
	dead, recent := closedTCPAddr(t), closedTCPAddr(t)
	longAgo := time.Now().UTC().Add(-4 * 24 * time.Hour).Format(time.RFC3339)
	hourAgo := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	book := fmt.Sprintf(`{"devices": [{"peerId": %q, "alias": "node-b", "dial": true, "addedAt": %q,
		"addrs": [%q, %q, %q],
		"failing": {%q: {"count": 40, "since": %q}, %q: {"count": 40, "since": %q}}}]}`,
		device.ID(), longAgo, dead, recent, live, dead, longAgo, recent, hourAgo)
	n, h := startBookNode(t, priv, book)

	want := []string{recent, live}
	waitBook(t, n, "node-b", 20*time.Second, func(d *messages.Device) error {
		if !d.Connected || !slices.Equal(d.Addrs, want) {
			return fmt.Errorf("connected %v, addrs %v; want connected, addrs %v", d.Connected, d.Addrs, want)
		}
		return nil
	})
	data, err := os.ReadFile(filepath.Join(h.Dir, "devices.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), dead) {
		t.Fatalf("devices.json still names the dead address %s:\n%s", dead, data)
	}
	if !strings.Contains(string(data), recent) {
		t.Fatalf("devices.json lost %s, which began failing only an hour ago:\n%s", recent, data)
	}
}

// A device that is off: each failed dial of its session is counted against
// the address it tried, on disk, and the address stays (it was never
// reached elsewhere).
func TestFailedDialsAreCounted(t *testing.T) {
	priv, _, _ := crypto.GenerateEd25519Key(nil)
	_, pub, _ := crypto.GenerateEd25519Key(nil)
	off, _ := peer.IDFromPublicKey(pub)
	dead := closedTCPAddr(t)
	book := fmt.Sprintf(`{"devices": [{"peerId": %q, "alias": "node-off", "dial": true, "addedAt": %q, "addrs": [%q]}]}`,
		off, time.Now().UTC().Format(time.RFC3339), dead)
	n, h := startBookNode(t, priv, book)

	path := filepath.Join(h.Dir, "devices.json")
	var data []byte
	err := testutil.Poll(30*time.Second, func() error {
		var file struct {
			Devices []struct {
				Addrs   []string
				Failing map[string]struct{ Count int }
			}
		}
		var err error
		data, err = os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &file); err != nil || len(file.Devices) != 1 {
			return fmt.Errorf("devices.json: %v, %d devices", err, len(file.Devices))
		}
		d := file.Devices[0]
		if d.Failing[dead].Count < 2 {
			return fmt.Errorf("%d failed dials counted", d.Failing[dead].Count)
		}
		if !slices.Equal(d.Addrs, []string{dead}) {
			t.Fatalf("the address of a device that is off left the book: %v", d.Addrs)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("failed dials of %s were not counted in devices.json within 30 s (%v):\n%s", dead, err, data)
	}
	res, err := n.ResolveDevice(&messages.DeviceResolve{Device: "node-off"}, 5*time.Second)
	if err != nil || !slices.Equal(res.Addrs, []string{dead}) {
		t.Fatalf("device list: %v, %v; want addrs [%s]", res, err, dead)
	}
}
