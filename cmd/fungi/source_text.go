package main

import (
	"os"
	"path/filepath"
	"strings"
)

// wideFlag keeps a table's long columns whole.
type wideFlag struct {
	Wide bool `name:"wide" help:"Show sources in full (the default shortens them so the table fits 100 columns)."`
}

// maxSourceText is the widest a source is shown in a table by default: with
// the other columns a service list line stays within 100 columns.
const maxSourceText = 36

// shortSource shortens a service's source for a table: the home folder as
// ~, a folder's middle elided to …/ and the last two elements kept, an
// image digest cut to 12 hex digits. A source in words is kept. --wide
// and --json keep every source whole.
func shortSource(src string) string {
	if strings.Contains(src, " ") {
		return src // words, not a path: "app.wasm (shipped with the pull, …)"
	}
	if home, err := os.UserHomeDir(); err == nil && home != "/" && strings.HasPrefix(src, home+string(filepath.Separator)) {
		src = "~" + src[len(home):]
	}
	if i := strings.Index(src, "@sha256:"); i >= 0 && len(src) > i+len("@sha256:")+12 {
		src = src[:i+len("@sha256:")+12]
	}
	if len(src) <= maxSourceText {
		return src
	}
	if parts := strings.Split(src, "/"); len(parts) > 2 {
		tail := strings.Join(parts[len(parts)-2:], "/")
		if len(tail)+2 <= maxSourceText {
			return "…/" + tail
		}
	}
	return "…" + src[len(src)-maxSourceText+1:]
}
