package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestConfigUnknownKeyIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(path, []byte("wasm:\n  memoryLimitMb: 10\n"), 0o600)
	if _, err := Load(path); err == nil {
		t.Fatal("a misspelt key was accepted")
	}
}

// Port mapping is on by default and can be turned off in config.yaml.
func TestPortMappingConfig(t *testing.T) {
	if !DefaultConfig().PortMapping {
		t.Fatal("port mapping is off by default")
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(path, []byte("mdns: false\nportMapping: false\n"), 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.PortMapping || c.MDNS {
		t.Fatalf("config says both off, loaded mdns=%v portMapping=%v", c.MDNS, c.PortMapping)
	}
}
