package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const commented = `# my node
listen: [/ip4/127.0.0.1/tcp/0]   # loopback only
mdns: false
mounts: {allowed: []}     # host folders
wasm:
  memoryLimitMB: 64 # small box
`

func TestSetKeepsCommentsAndValidates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(commented), 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := Add(path, "mounts.allowed", "/srv/media"); err != nil || !changed {
		t.Fatalf("add mount: changed %v, err %v", changed, err)
	}
	if err := Set(path, "wasm.requestTimeout", []string{"5s"}); err != nil {
		t.Fatal(err)
	}
	if err := Set(path, "mdns", []string{"true"}); err != nil {
		t.Fatal(err)
	}
	if err := Set(path, "ui.listen", []string{"127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	for _, want := range []string{"# my node", "# loopback only", "# host folders", "# small box"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("comment %q lost:\n%s", want, data)
		}
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("edited config does not load: %v\n%s", err, data)
	}
	if len(cfg.Mounts.Allowed) != 1 || cfg.Mounts.Allowed[0] != "/srv/media" || !cfg.MDNS ||
		cfg.Wasm.RequestTimeout.String() != "5s" || cfg.Wasm.MemoryLimitMB != 64 || cfg.UI.Listen != "127.0.0.1:0" {
		t.Fatalf("config after edits: %+v\n%s", cfg, data)
	}
	if got, _ := Get(path, "wasm.requestTimeout"); len(got) != 1 || got[0] != "5s" {
		t.Fatalf("get wasm.requestTimeout = %q", got)
	}
	if removed, err := Remove(path, "mounts.allowed", "/srv/media"); err != nil || !removed {
		t.Fatalf("remove mount: %v %v", removed, err)
	}
	if got, _ := Get(path, "mounts.allowed"); len(got) != 0 {
		t.Fatalf("mounts.allowed after remove = %q", got)
	}

	before, _ := os.ReadFile(path)
	for _, bad := range []struct{ key, value string }{
		{"relays", "/ip4/1.2.3.4/tcp/4001"}, // no /p2p/ID
		{"mounts.allowed", "relative/dir"},
		{"mdns", "maybe"},
		{"log.level", "loud"},
		{"wasm.requestTimeout", "-1s"},
		{"nosuch", "x"},
	} {
		if err := Set(path, bad.key, []string{bad.value}); err == nil {
			t.Errorf("set %s %s: accepted", bad.key, bad.value)
		}
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatalf("a refused edit changed the file:\n%s", after)
	}
}

// A switch is set as people write it (the README says discovery.dht:
// on|off) and written back as YAML 1.2 reads it.
func TestSetBoolTakesOnAndOff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := Set(path, "discovery.dht", []string{"off"}); err != nil {
		t.Fatalf("set discovery.dht off: %v", err)
	}
	if got, _ := Get(path, "discovery.dht"); len(got) != 1 || got[0] != "false" {
		t.Fatalf("discovery.dht after off = %q, want false", got)
	}
	if err := Set(path, "mdns", []string{"On"}); err != nil {
		t.Fatalf("set mdns On: %v", err)
	}
	cfg, err := Load(path)
	if err != nil || cfg.Discovery.DHT || !cfg.MDNS {
		t.Fatalf("config after off/on: dht %v mdns %v err %v", cfg.Discovery.DHT, cfg.MDNS, err)
	}
}
