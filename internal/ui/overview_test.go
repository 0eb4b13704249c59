package ui_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/messages"
)

// TestOverviewShowsEveryDevice asks the dashboard's /api/overview of a node
// that knows one device nothing answers for: this node's row is live, the
// device's says it never answered, and why; the page offers the section.
func TestOverviewShowsEveryDevice(t *testing.T) {
	n := startNode(t)
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPublicKey(pub)
	// A port that refuses: the device is offline.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if _, err := n.api.AddDevice(context.Background(), &messages.DeviceAdd{PeerId: id.String(), Alias: "gone", Addrs: []string{"/ip4/127.0.0.1/tcp/" + itoa(dead)}}); err != nil {
		t.Fatal(err)
	}
	c := n.loggedIn(t)
	res, err := c.Get("http://" + n.addr + "/api/overview?refresh=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var got struct {
		Devices []struct {
			PeerID   string `json:"peerId"`
			Alias    string `json:"alias"`
			Self     bool   `json:"self"`
			Live     bool   `json:"live"`
			CachedAt string `json:"cachedAt"`
			Error    string `json:"error"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(body, &got); err != nil || res.StatusCode != 200 {
		t.Fatalf("/api/overview: %s %v\n%s", res.Status, err, body)
	}
	if len(got.Devices) != 2 || !got.Devices[0].Self || !got.Devices[0].Live {
		t.Fatalf("want this node first and live, then the device: %s", body)
	}
	d := got.Devices[1]
	if d.Alias != "gone" || d.Live || d.CachedAt != "" || d.Error == "" {
		t.Fatalf("the offline device: %+v", d)
	}
	page, err := c.Get("http://" + n.addr + "/app.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if !strings.Contains(string(js), `api("GET", "/api/overview"`) {
		t.Fatal("the dashboard does not ask /api/overview")
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
