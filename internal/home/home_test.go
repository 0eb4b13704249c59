package home

import (
	"os"
	"path/filepath"
	"testing"
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
	if len(cfg.Listen) != len(defaultListen()) || cfg.Wasm.MemoryLimitMB != 256 {
		t.Fatalf("default config %+v", cfg)
	}
}

func TestConfigUnknownKeyIsAnError(t *testing.T) {
	h, _ := Open(t.TempDir())
	os.WriteFile(h.ConfigPath(), []byte("wasm:\n  memoryLimitMb: 10\n"), 0o600)
	if _, err := h.LoadConfig(); err == nil {
		t.Fatal("a misspelt key was accepted")
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

// Port mapping is on by default and can be turned off in config.yaml.
func TestPortMappingConfig(t *testing.T) {
	if !DefaultConfig().PortMapping {
		t.Fatal("port mapping is off by default")
	}
	h, _ := Open(t.TempDir())
	os.WriteFile(h.ConfigPath(), []byte("mdns: false\nportMapping: false\n"), 0o600)
	c, err := h.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.PortMapping || c.MDNS {
		t.Fatalf("config says both off, loaded mdns=%v portMapping=%v", c.MDNS, c.PortMapping)
	}
}
