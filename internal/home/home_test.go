package home

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fungi-go/fungi/internal/config"
)

func TestInitCreatesPrivateIdentityOnce(t *testing.T) {
	h, _ := Open(t.TempDir())
	created, err := h.Init()
	if err != nil || !created {
		t.Fatalf("first init: created %v err %v", created, err)
	}
	info, err := os.Stat(h.KeyPath())
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("identity key mode %v, want 0600", info.Mode().Perm())
	}
	_, id1, err := h.Identity()
	if err != nil {
		t.Fatal(err)
	}
	created, err = h.Init()
	if err != nil || created {
		t.Fatalf("second init: created %v err %v", created, err)
	}
	_, id2, _ := h.Identity()
	if id1 != id2 {
		t.Fatal("a second init changed the identity")
	}
	cfg, err := h.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listen) != len(config.DefaultConfig().Listen) || cfg.Wasm.MemoryLimitMB != 256 {
		t.Fatalf("default config %+v", cfg)
	}
}

// `fungi init` on a folder that already exists (made by hand, or by mkdir
// -p with the usual umask) makes it private: it holds the identity key.
func TestInitMakesAnExistingFolderPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	h, _ := Open(dir)
	if _, err := h.Init(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("home folder mode %o after init, want 700", st.Mode().Perm())
	}
}
