package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWholeAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "state.json")
	if err := Write(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new content"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if string(got) != "new content" {
		t.Fatalf("content %q", got)
	}
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", info.Mode())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestFailedWriteKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := Write(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A folder where the file should be: the rename fails, as a crash
	// before the rename would leave things.
	bad := filepath.Join(dir, "blocked")
	os.MkdirAll(filepath.Join(bad, "child"), 0o755)
	if err := Write(bad, []byte("x"), 0o600); err == nil {
		t.Fatal("write over a non-empty folder succeeded")
	}
	got, _ := os.ReadFile(path)
	if string(got) != "old" {
		t.Fatalf("old file changed: %q", got)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "state.json" && e.Name() != "blocked" {
			t.Fatalf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestIsTempMatchesWhatWriteLeavesAfterACrash(t *testing.T) {
	dir := t.TempDir()
	for _, target := range []string{"devices.json", "state.json", "config.yaml", "a", "x.tmp-1"} {
		// What a crash between creating the temp file and the rename
		// leaves behind, made the way Write makes it.
		f, err := createTemp(dir, target)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if name := filepath.Base(f.Name()); !IsTemp(name) {
			t.Errorf("IsTemp(%q) = false for the temp file of %s", name, target)
		}
	}
	for _, name := range []string{
		"devices.json", "state.json", ".devices.json", ".tmp-123", "devices.json.tmp-123",
		".devices.json.tmp-", ".devices.json.tmp-12a", ".devices.json.tmp-123.bak", ".devices.json.temp-123",
	} {
		if IsTemp(name) {
			t.Errorf("IsTemp(%q) = true; only Write's own temporary files may match", name)
		}
	}
}
