package install

import (
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// The unit, plist and Windows service description for fixed inputs match
// the files under testdata, reviewed by hand; a change to a template shows
// up as a diff there (go test -update rewrites them). Paths with spaces
// and XML/systemd special characters are quoted.
func TestGolden(t *testing.T) {
	user := Spec{Exe: "/usr/local/bin/fungi", Home: "/home/ana/.fungi", DefaultHome: "/home/ana/.fungi"}
	system := Spec{Exe: "/opt/fungi dir/fungi", Home: "/var/lib/fungi & co", System: true, User: "fungi"}
	win := Spec{Exe: `C:\Program Files\fungi\fungi.exe`, Home: `C:\Users\ana\.fungi`, System: true}
	must := func(text string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	w, err := WindowsServiceFor(win)
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := json.MarshalIndent(w, "", "  ")
	for name, got := range map[string]string{
		"user.service":         must(SystemdUnit(user)),
		"system.service":       must(SystemdUnit(system)),
		"user.plist":           must(LaunchdPlist(user)),
		"system.plist":         must(LaunchdPlist(system)),
		"windows-service.json": string(ws) + "\n",
	} {
		path := filepath.Join("testdata", name)
		if *update {
			os.WriteFile(path, []byte(got), 0o644)
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s differs from %s:\n%s", name, path, got)
		}
	}
}

// The plist is well-formed XML whatever the paths hold.
func TestPlistIsWellFormedXML(t *testing.T) {
	p, err := LaunchdPlist(Spec{Exe: `/a <b> & "c"`, Home: `/x'y&z`})
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(strings.NewReader(p))
	d.Strict = true
	var strs []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, p)
		}
		if c, ok := tok.(xml.CharData); ok && strings.TrimSpace(string(c)) != "" {
			strs = append(strs, string(c))
		}
	}
	if !slices.Contains(strs, `/a <b> & "c"`) || !slices.Contains(strs, "/x'y&z/logs/launchd.err") {
		t.Fatalf("values not round-tripped: %q", strs)
	}
}
