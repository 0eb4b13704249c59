package home

import (
	"os"
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
	if len(cfg.Listen) != 2 || cfg.Wasm.MemoryLimitMB != 256 {
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
