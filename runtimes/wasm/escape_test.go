package wasm

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// drillAttempts is how many escapes runtimes/wasm/testdata/escape tries; the
// test checks every one was made and refused.
const drillAttempts = 41

// workSteps is how many steps of ordinary file work the guest does.
const workSteps = 15

// startEscapeGuest runs the escape guest with dataDir mounted at /data.
func startEscapeGuest(t *testing.T, dataDir string) string {
	t.Helper()
	wasmPath := testutil.BuildWasm(t, "runtimes/wasm/testdata/escape")
	g, err := startModule(t, DefaultConfig(""), wasmPath, nil, []manifest.ResolvedMount{{HostPath: dataDir, RuntimePath: "/data"}})
	if err != nil {
		t.Fatal(err)
	}
	return g.base
}

// TestGuestEscapeDrill runs a guest that tries every way out of its mount
// it can (symlinks it makes, a symlink already in the folder, "..",
// absolute paths, hard links, renames) to read a secret in a sibling folder
// and to write beside it, and checks on the host that it got nowhere.
func TestGuestEscapeDrill(t *testing.T) {
	base := t.TempDir()
	mount := filepath.Join(base, "mount")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{mount, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	secret := "secret-" + hex.EncodeToString(nonce)
	secretPath := filepath.Join(outside, "secret.txt")
	if err := os.WriteFile(secretPath, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mount, "victim.txt"), []byte("victim"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside", filepath.Join(mount, "planted")); err != nil {
		t.Fatal(err)
	}
	service := startEscapeGuest(t, mount)

	q := url.Values{"up": {"../outside"}, "abs": {outside}, "planted": {"planted"}}
	code, body, _ := get(t, service+"/drill?"+q.Encode())
	if code != 200 {
		t.Fatalf("drill: %d %s", code, body)
	}
	if strings.Contains(body, secret) {
		t.Errorf("the guest read the secret outside its mount:\n%s", body)
	}
	refusedCount := 0
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		switch {
		case strings.Contains(line, ": refused ("):
			refusedCount++
		default:
			t.Errorf("escape not refused: %s", line)
		}
	}
	if refusedCount != drillAttempts {
		t.Errorf("%d attempts refused, want all %d; the guest's report:\n%s", refusedCount, drillAttempts, body)
	}

	// On the host: nothing outside changed, nothing came in, nothing left.
	names := testutil.DirNames(t, outside)
	if !slices.Equal(names, []string{"secret.txt"}) {
		t.Errorf("the folder outside the mount now holds %v, want only secret.txt", names)
	}
	if got, err := os.ReadFile(secretPath); err != nil || string(got) != secret {
		t.Errorf("the secret outside the mount was changed: %q %v", got, err)
	}
	if fi, err := os.Stat(secretPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the secret's mode was changed: %v %v", fi, err)
	}
	if got, err := os.ReadFile(filepath.Join(mount, "victim.txt")); err != nil || string(got) != "victim" {
		t.Errorf("victim.txt left the mount or changed: %q %v", got, err)
	}
	// The guest must not leave links that host programs sharing the folder
	// would follow out of it, nor copies of the secret.
	filepath.WalkDir(mount, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == filepath.Join(mount, "planted") {
			return err
		}
		if d.Type()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			resolved := filepath.Join(filepath.Dir(p), target)
			if filepath.IsAbs(target) || !strings.HasPrefix(resolved, mount+string(filepath.Separator)) {
				t.Errorf("the guest left a link out of the mount: %s -> %s", p, target)
			}
		}
		if d.Type().IsRegular() {
			if got, _ := os.ReadFile(p); strings.Contains(string(got), secret) {
				t.Errorf("the secret was brought into the mount as %s", p)
			}
		}
		return nil
	})
}

// TestGuestFileWorkInsideMount checks that confinement leaves ordinary file
// work inside the mount working: create, append, read, rename, symlink and
// hard link inside, readlink, stat, lstat, readdir, mkdir and remove.
func TestGuestFileWorkInsideMount(t *testing.T) {
	mount := t.TempDir()
	base := startEscapeGuest(t, mount)
	code, body, _ := get(t, base+"/work")
	if code != 200 {
		t.Fatalf("work: %d %s", code, body)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	for _, line := range lines {
		if !strings.HasSuffix(line, ": ok") {
			t.Errorf("file work inside the mount failed: %s", line)
		}
	}
	if len(lines) != workSteps {
		t.Errorf("%d steps reported, want %d:\n%s", len(lines), workSteps, body)
	}
	if got, err := os.ReadFile(filepath.Join(mount, "work", "sub", "b.txt")); err != nil || string(got) != "first second" {
		t.Errorf("on the host, work/sub/b.txt: %q %v", got, err)
	}
	if target, err := os.Readlink(filepath.Join(mount, "work", "link")); err != nil || target != "sub/b.txt" {
		t.Errorf("on the host, work/link: %q %v", target, err)
	}
}
