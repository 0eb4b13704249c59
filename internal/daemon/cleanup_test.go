package daemon

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fungi-go/fungi/internal/home"
)

// staleTemp makes the file a crash inside atomicfile.Write leaves next to
// target: the same hidden name with os.CreateTemp's random digits.
func staleTemp(t *testing.T, target string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("half a file")
	f.Close()
	return f.Name()
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRemoveStaleTempsSweepsFungisFoldersOnly(t *testing.T) {
	h := &home.Home{Dir: t.TempDir()}
	outside := t.TempDir()

	stale := []string{
		staleTemp(t, filepath.Join(h.Dir, "devices.json")),
		staleTemp(t, filepath.Join(h.Dir, "access.json")),
		staleTemp(t, h.ConfigPath()),
		staleTemp(t, filepath.Join(h.ServiceDir("web"), "state.json")),
		staleTemp(t, filepath.Join(h.ServiceDir("web"), "manifest.yaml")),
		staleTemp(t, filepath.Join(h.CacheDir("wasm"), "modules", "ab12.wasm")),
		staleTemp(t, filepath.Join(h.CacheDir("wasm"), "downloads", "cd34.wasm")),
	}
	kept := []string{
		writeFile(t, filepath.Join(h.Dir, "devices.json"), `{"devices":[]}`),
		writeFile(t, filepath.Join(h.ServiceDir("web"), "state.json"), `{}`),
		// A guest's files keep whatever names it gives them.
		staleTemp(t, filepath.Join(h.DataDir("web"), "notes.txt")),
		writeFile(t, filepath.Join(h.DataDir("web"), ".notes.txt.tmp-42"), "guest data"),
		// Names that only look alike.
		writeFile(t, filepath.Join(h.Dir, ".devices.json.tmp-12ab"), "x"),
		writeFile(t, filepath.Join(h.Dir, "devices.json.tmp-123"), "x"),
		writeFile(t, filepath.Join(h.ServiceDir("web"), ".tmp-123"), "x"),
		// Behind a symbolic link in a service folder: not fungi's folder.
		staleTemp(t, filepath.Join(outside, "state.json")),
	}
	if err := os.Symlink(outside, filepath.Join(h.ServiceDir("web"), "linked")); err != nil {
		t.Fatal(err)
	}
	// A folder with a temp file's name is no temp file.
	tempLikeDir := filepath.Join(h.Dir, ".state.json.tmp-777")
	if err := os.Mkdir(tempLikeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, tempLikeDir)

	if err := removeStaleTemps(h); err != nil {
		t.Fatalf("removeStaleTemps: %v", err)
	}
	for _, p := range stale {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("stale temporary file %s is still there (stat: %v)", p, err)
		}
	}
	for _, p := range kept {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed but is not a stale temporary file of fungi's: %v", p, err)
		}
	}
}

func TestRemoveStaleTempsOnAFreshHome(t *testing.T) {
	h := &home.Home{Dir: filepath.Join(t.TempDir(), "not-yet-created")}
	if err := removeStaleTemps(h); err != nil {
		t.Fatalf("a home with nothing in it yet: %v", err)
	}
}
