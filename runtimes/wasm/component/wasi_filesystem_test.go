package component

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The guest cli_file_read opens bar.txt in its preopen and checks its text.
// When bar.txt is a symlink leading out of the mount, the guest must not
// read the file it points at; when it leads to a file inside, it must.
func TestGuestFollowsSymlinksOnlyBeneathItsMount(t *testing.T) {
	c := compileCorpus(t, "B/bytecodealliance_jco__cli_file_read.component.wasm")
	const text = "And stood awhile in thought"
	for _, tc := range []struct {
		name, target string
		code         int
	}{
		{"inside", "real/bar.txt", 0},
		// The guest's main returns the open error: exit 1, "not permitted".
		{"parent", "../outside/bar.txt", 1},
		{"absolute", "", 1}, // filled in below: the outside file's absolute path
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			mount := filepath.Join(root, "mount")
			for _, d := range []string{filepath.Join(mount, "real"), filepath.Join(root, "outside")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []string{filepath.Join(mount, "real", "bar.txt"), filepath.Join(root, "outside", "bar.txt")} {
				if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			target := tc.target
			if target == "" {
				target = filepath.Join(root, "outside", "bar.txt")
			}
			if err := os.Symlink(target, filepath.Join(mount, "bar.txt")); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := run(t, c, Config{Preopens: []Preopen{{HostPath: mount, GuestPath: "/"}}})
			if code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if tc.code != 0 && !strings.Contains(stderr, "not permitted") {
				t.Fatalf("stderr %q does not say the open was not permitted", stderr)
			}
		})
	}
}

// A guest's own symlinks and ".." paths, through the descriptor calls the
// wasi:filesystem host functions make, reach nothing outside the mount.
func TestDescriptorCallsStayBeneathTheMount(t *testing.T) {
	root := t.TempDir()
	mount := filepath.Join(root, "mount")
	if err := os.MkdirAll(filepath.Join(mount, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "secret"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mount, "inside"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := openPreopen(Preopen{HostPath: mount, GuestPath: "/"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.closeRoot()
	const follow, read = 1, 1
	// The guest makes a symlink to ".." and one to the secret's absolute path.
	if err := d.mutate("up", func(r *os.Root, rel string) error { return r.Symlink("..", rel) }); err != nil {
		t.Fatalf("symlink-at up -> ..: %v", err)
	}
	if err := d.mutate("abs", func(r *os.Root, rel string) error { return r.Symlink(filepath.Join(root, "secret"), rel) }); err != nil {
		t.Fatalf("symlink-at abs: %v", err)
	}
	for _, p := range []string{"../secret", "sub/../../secret", "up/secret", "up/mount/inside/../../secret", "abs", "/etc/passwd", "sub/../up/secret"} {
		nd, err := d.openAt(follow, p, 0, read)
		if err == nil {
			b := make([]byte, 16)
			n, _ := nd.file.Read(b)
			nd.drop()
			t.Fatalf("open-at %q opened a file reading %q; want a refusal", p, b[:n])
		}
		if code := fsCode(err); code == "io" {
			t.Errorf("open-at %q: error %v maps to the catch-all io", p, err)
		}
		if _, err := d.statAt(follow, p); err == nil {
			t.Errorf("stat-at %q succeeded outside the mount", p)
		}
	}
	sub, err := d.openAt(follow, "sub", 0, read)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.openAt(follow, "../../secret", 0, read); err == nil {
		t.Fatal("open-at ../../secret from a subfolder descriptor succeeded")
	}
	// Control: the same calls reach what is inside.
	nd, err := sub.openAt(follow, "../inside", 0, read)
	if err != nil {
		t.Fatalf("open-at ../inside from sub: %v", err)
	}
	nd.drop()
}
