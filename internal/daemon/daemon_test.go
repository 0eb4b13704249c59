package daemon_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/daemon"
	"github.com/fungi-go/fungi/internal/daemon/daemontest"
	"github.com/fungi-go/fungi/internal/testutil"
)

// The daemons tests start send nothing off the machine: their config has
// mDNS and port mapping off, and the running daemon says it took both off.
func TestTestDaemonsKeepMDNSAndPortMappingOff(t *testing.T) {
	var log testutil.SyncBuffer
	h := daemontest.Start(t, daemontest.Options{Log: &log}).Home
	cfg, err := h.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MDNS || cfg.PortMapping || cfg.Discovery.DHT {
		t.Fatalf("a test daemon's config: mdns %v, portMapping %v, discovery.dht %v; all must be off", cfg.MDNS, cfg.PortMapping, cfg.Discovery.DHT)
	}
	testutil.WaitFor(t, 10*time.Second, "the daemon's settings lines", func() error {
		if !strings.Contains(log.String(), "mDNS off, port mapping off") || !strings.Contains(log.String(), "DHT off, 0 bootstrap peers") {
			return os.ErrNotExist
		}
		return nil
	})
}

// An access.json the daemon cannot read or parse stops it with the file
// named, and is left as it was: starting with an empty book would let the
// next attach overwrite the entries it holds.
func TestDaemonRefusesAccessBookItCannotRead(t *testing.T) {
	for name, plant := range map[string]func(path string) error{
		"unreadable": func(path string) error { return os.Mkdir(path, 0o700) }, // reading a folder fails
		"malformed":  func(path string) error { return os.WriteFile(path, []byte(`[{"peerId": "12D3`), 0o600) },
	} {
		t.Run(name, func(t *testing.T) {
			h := daemontest.NewHome(t, daemontest.QuietConfig)
			path := filepath.Join(h.Dir, "access.json")
			if err := plant(path); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := daemon.Run(ctx, daemon.Options{Home: h, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Log: &testutil.SyncBuffer{}})
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("daemon with a broken %s: %v", path, err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Fatalf("access.json changed: %q -> %q", before, after)
			}
		})
	}
}
