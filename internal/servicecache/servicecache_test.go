package servicecache

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/messages"
)

func list(names ...string) *messages.ServiceList {
	out := &messages.ServiceList{}
	for _, n := range names {
		out.Services = append(out.Services, &messages.ServiceInfo{Name: n, State: "running"})
	}
	return out
}

func TestPutSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache", "devices.json")
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put("peer-b", "node-b", list("web", "db")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v, %v", fi, err)
	}
	again, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := again.Get("peer-b")
	if !ok || e.Alias != "node-b" || len(e.Services.Services) != 2 || e.Services.Services[1].Name != "db" || time.Since(e.CachedAt) > time.Minute {
		t.Fatalf("reopened entry %+v, %v", e, ok)
	}
}

func TestFullCacheEvictsTheOldest(t *testing.T) {
	c, _ := Open(filepath.Join(t.TempDir(), "devices.json"))
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	for i := range MaxDevices + 1 {
		if err := c.Put(fmt.Sprintf("peer-%d", i), "", list("s")); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := c.Get("peer-0"); ok {
		t.Fatal("the oldest device was kept past the bound")
	}
	if _, ok := c.Get(fmt.Sprintf("peer-%d", MaxDevices)); !ok {
		t.Fatal("the newest device was not kept")
	}
	if len(c.entries) != MaxDevices {
		t.Fatalf("%d devices, bound %d", len(c.entries), MaxDevices)
	}
}

func TestServicesPerDeviceAreBounded(t *testing.T) {
	c, _ := Open(filepath.Join(t.TempDir(), "devices.json"))
	names := make([]string, MaxServicesPerDevice+10)
	for i := range names {
		names[i] = fmt.Sprint("s", i)
	}
	c.Put("p", "", list(names...))
	if e, _ := c.Get("p"); len(e.Services.Services) != MaxServicesPerDevice {
		t.Fatalf("%d services kept, bound %d", len(e.Services.Services), MaxServicesPerDevice)
	}
}

func TestBadFilesStartEmptyWithAReason(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.json")
	os.WriteFile(garbage, []byte("{not json"), 0o600)
	c, err := Open(garbage)
	if err == nil || !strings.Contains(err.Error(), "not valid JSON, starting empty") || c == nil {
		t.Fatalf("garbage: %v", err)
	}
	huge := filepath.Join(dir, "huge.json")
	os.WriteFile(huge, make([]byte, MaxFileBytes+1), 0o600)
	if _, err := Open(huge); err == nil || !strings.Contains(err.Error(), "over the") {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "missing.json")); err != nil {
		t.Fatalf("missing file: %v", err)
	}
}
