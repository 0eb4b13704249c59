package install

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Two homes installed as user services get units of their own names; the
// default home keeps fungi.service; uninstall removes only its home's unit.
func TestServiceNamedAfterHome(t *testing.T) {
	dir := t.TempDir()
	def := filepath.Join(dir, "ana", ".fungi")
	a := Spec{Exe: "/usr/local/bin/fungi", Home: def, DefaultHome: def, Dir: dir}
	b := Spec{Exe: "/usr/local/bin/fungi", Home: "/srv/node b", DefaultHome: def, Dir: dir}
	c := Spec{Exe: "/usr/local/bin/fungi", Home: "/other/node b", DefaultHome: def, Dir: dir}
	if a.Name() != "fungi" {
		t.Errorf("default home's service is %q, want fungi", a.Name())
	}
	if !strings.HasPrefix(b.Name(), "fungi-node-b-") || b.Name() == c.Name() {
		t.Errorf("names %q and %q: want fungi-node-b-<hash>, distinct", b.Name(), c.Name())
	}
	if b.Label() != "dev.fungi.daemon."+strings.TrimPrefix(b.Name(), "fungi-") || a.Label() != LaunchdLabel {
		t.Errorf("labels %q %q", a.Label(), b.Label())
	}
	for _, s := range []Spec{a, b, c} {
		if _, err := Install(s); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Fatalf("%d entries in the unit folder, want 3 units: %v", len(entries), entries)
	}
	res, err := Uninstall(b)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(res.Path) != b.Name()+".service" && filepath.Base(res.Path) != b.Label()+".plist" {
		t.Errorf("uninstall removed %s", res.Path)
	}
	for _, s := range []Spec{a, c} {
		st, err := StatusOf(s)
		if err != nil || !st.Installed {
			t.Errorf("%s gone after uninstalling %s: %v", s.Name(), b.Name(), err)
		}
	}
}

// A user install tells about lingering, which a headless server needs for
// the service to start at boot.
func TestUserInstallNamesLinger(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("lingering is systemd's")
	}
	s := Spec{Exe: "/usr/local/bin/fungi", Home: "/srv/n", Dir: t.TempDir()}
	res, err := Install(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Next, "loginctl enable-linger") {
		t.Errorf("next: %q, want the loginctl enable-linger note", res.Next)
	}
}
