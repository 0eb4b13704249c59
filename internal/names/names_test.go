package names

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fungi-go/fungi/messages"
)

func TestLabel(t *testing.T) {
	for in, want := range map[string]string{
		"Web":                   "web",
		"my_app v2":             "my-app-v2",
		"--x--":                 "x",
		"élan":                  "lan",
		"":                      "fb",
		"***":                   "fb",
		strings.Repeat("a", 70): strings.Repeat("a", 63),
	} {
		if got := Label(in, "fb"); got != want {
			t.Errorf("Label(%q) = %q, want %q", in, got, want)
		}
	}
}

func entry(peer, alias, svc string) *messages.AccessEntry {
	return &messages.AccessEntry{PeerId: peer, Alias: alias, ServiceId: svc, Ports: []*messages.AccessPort{{Name: "http", LocalAddress: "127.0.0.1:1"}}}
}

// Collisions are resolved by peer ID and service ID, whatever the order
// the entries come in.
func TestAssignCollisionsAreDeterministic(t *testing.T) {
	mk := func() []*messages.AccessEntry {
		return []*messages.AccessEntry{
			entry("12D3KooWBBBB", "Laptop", "web"),
			entry("12D3KooWAAAA", "laptop", "web"),
			entry("12D3KooWAAAA", "laptop", "Web"),
			entry("12D3KooWCCCCCCCCCCCCCCCC", "", "files"),
		}
	}
	want := map[string]string{"12D3KooWAAAA/Web": "web.laptop", "12D3KooWAAAA/web": "web-2.laptop",
		"12D3KooWBBBB/web": "web.laptop-2", "12D3KooWCCCCCCCCCCCCCCCC/files": "files.cccccccccccc"}
	a, b := mk(), mk()
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	Assign(a, "127.0.0.1:8479")
	Assign(b, "")
	for _, list := range [][]*messages.AccessEntry{a, b} {
		for _, e := range list {
			if got := e.Name; got != want[e.PeerId+"/"+e.ServiceId] {
				t.Errorf("%s/%s named %q, want %q", e.PeerId, e.ServiceId, got, want[e.PeerId+"/"+e.ServiceId])
			}
		}
	}
	if a[0].Url != "http://web.laptop-2.localhost:8479/" || b[0].Url != "" {
		t.Errorf("URLs %q and %q", a[0].Url, b[0].Url)
	}
}

func startServer(t *testing.T, entries ...*messages.AccessEntry) *Server {
	t.Helper()
	s, err := Start(Options{Listen: "127.0.0.1:0", Entries: func(context.Context) ([]*messages.AccessEntry, error) { return entries, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, s *Server, host string, header http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.Addr+"/p", nil)
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func TestServerRoutesByHostAndRefusesOtherHosts(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream "+r.URL.Path+" for "+r.Header.Get("X-Forwarded-Host"))
	}))
	defer up.Close()
	e := entry("12D3KooWAAAA", "nas", "photos")
	e.Ports[0].LocalAddress = up.Listener.Addr().String()
	s := startServer(t, e)
	_, port, _ := net.SplitHostPort(s.Addr)
	if code, body := get(t, s, "photos.nas.localhost:"+port, nil); code != 200 || body != "upstream /p for photos.nas.localhost:"+port {
		t.Errorf("by name: %d %q", code, body)
	}
	// DNS rebinding: another site's name pointed at 127.0.0.1.
	if code, body := get(t, s, "evil.example:"+port, nil); code != http.StatusMisdirectedRequest || strings.Contains(body, "upstream") {
		t.Errorf("another host: %d %q", code, body)
	}
	if code, body := get(t, s, "nope.nas.localhost:"+port, nil); code != 404 || !strings.Contains(body, "photos.nas") {
		t.Errorf("unknown name: %d %q", code, body)
	}
	// An oversized header is refused before any handler runs.
	big := http.Header{"X-Big": {strings.Repeat("x", 2*maxHeaderBytes)}}
	if code, _ := get(t, s, "photos.nas.localhost:"+port, big); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("big header: %d", code)
	}
}

// A name whose device does not answer says so in words.
func TestServerNamesADeadTarget(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	e := entry("12D3KooWAAAA", "nas", "photos")
	e.Ports[0].LocalAddress = dead
	s := startServer(t, e)
	if code, body := get(t, s, "photos.nas.localhost", nil); code != http.StatusBadGateway || !strings.Contains(body, "photos.nas is attached at "+dead+", but it did not answer") {
		t.Errorf("dead target: %d %q", code, body)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	if _, err := Start(Options{Listen: "0.0.0.0:0"}); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("0.0.0.0: %v", err)
	}
}
