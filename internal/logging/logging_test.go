package logging

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The file is rotated before it passes its limit, keeping exactly one
// previous file, and no line is split across the two.
func TestRotatingFileKeepsOnePreviousFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "daemon.log")
	r, err := OpenFile(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; i < 30; i++ {
		fmt.Fprintf(r, "line %02d xxxxxxxxxx\n", i) // 20 bytes
	}
	cur, _ := os.ReadFile(path)
	prev, _ := os.ReadFile(path + ".1")
	if len(cur) > 100 || len(prev) > 100 || len(prev) == 0 {
		t.Fatalf("sizes: current %d, previous %d; want both <= 100 and a previous file", len(cur), len(prev))
	}
	if !strings.HasSuffix(string(cur), "line 29 xxxxxxxxxx\n") || !strings.HasPrefix(string(cur), "line 25") {
		t.Fatalf("current file %q: want lines 25..29", cur)
	}
	if _, err := os.Stat(path + ".2"); !os.IsNotExist(err) {
		t.Fatalf("a second previous file exists: %v", err)
	}
}

func TestTailLastLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.log")
	var all strings.Builder
	for i := 0; i < 20000; i++ { // larger than one read block
		fmt.Fprintf(&all, "line %d\n", i)
	}
	os.WriteFile(path, []byte(all.String()), 0o600)
	for _, c := range []struct {
		n    int
		want string
	}{{0, ""}, {1, "line 19999\n"}, {3, "line 19997\nline 19998\nline 19999\n"}, {-1, all.String()}, {30000, all.String()}} {
		var out bytes.Buffer
		if _, err := Tail(path, c.n, &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != c.want {
			t.Errorf("Tail %d: got %d bytes ending %q", c.n, out.Len(), out.String()[max(0, out.Len()-30):])
		}
	}
}
