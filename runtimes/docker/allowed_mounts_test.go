package docker

import (
	"testing"

	"github.com/fungi-go/fungi/runtimes/manifest"
)

// mounts.allowed reloaded while the daemon runs reaches the guard that
// checks every container the provider creates: a bind from a folder
// allowed later passes, and one from a folder denied later is refused.
func TestSetAllowedMountsReachesTheGuard(t *testing.T) {
	p := New(Config{DataRoot: "/home/u/.fungi/data"})
	p.guard = &Guard{}
	first := []string{"/home/u/.fungi/data"}
	p.guard.roots.Store(&first)
	spec := goodSpec()
	spec.Mounts = append(spec.Mounts, manifest.ResolvedMount{HostPath: "/srv/media/films", RuntimePath: "/media"})
	cfg, hc := build(spec)
	if err := checkPolicy(cfg, hc, *p.guard.roots.Load()); err == nil {
		t.Fatal("a bind outside every allowed folder passed")
	}
	p.SetAllowedMounts([]string{"/srv/media"})
	if err := checkPolicy(cfg, hc, *p.guard.roots.Load()); err != nil {
		t.Fatalf("after allowing /srv/media: %v", err)
	}
	p.SetAllowedMounts(nil)
	if err := checkPolicy(cfg, hc, *p.guard.roots.Load()); err == nil {
		t.Fatal("after denying /srv/media the bind still passed")
	}
}
