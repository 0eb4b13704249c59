package main

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// A long source is shortened to at most maxSourceText characters, keeping
// the end that names it; a short one is kept whole.
func TestShortSource(t *testing.T) {
	for src, want := range map[string]string{
		"examples/wasm/app.wasm": "examples/wasm/app.wasm",
		"/var/lib/fungi/some/deep/folder/of/artifacts/filebrowser-lite.wasm":   "…/artifacts/filebrowser-lite.wasm",
		"docker.io/library/nginx:1.27@sha256:0123456789abcdef0123456789abcdef": "…rary/nginx:1.27@sha256:0123456789ab",
	} {
		got := shortSource(src)
		if got != want {
			t.Errorf("shortSource(%q) = %q, want %q", src, got, want)
		}
		if utf8.RuneCountInString(got) > maxSourceText {
			t.Errorf("%q is %d characters, over %d", got, utf8.RuneCountInString(got), maxSourceText)
		}
	}
	if got := shortSource(strings.Repeat("x", 80)); utf8.RuneCountInString(got) != maxSourceText {
		t.Errorf("a long name without slashes: %q", got)
	}
}

// A runtime's long detail is wrapped at spaces within detailWidth.
func TestWrapWords(t *testing.T) {
	text := strings.Repeat("external services may reach 127.0.0.1 and the hosts in external.allowedHosts; ", 12)
	lines := wrapWords(text, detailWidth)
	if len(lines) < 10 {
		t.Fatalf("%d lines for %d characters", len(lines), len(text))
	}
	for _, l := range lines {
		if utf8.RuneCountInString(l) > detailWidth {
			t.Errorf("line of %d characters: %q", utf8.RuneCountInString(l), l)
		}
	}
	if got := strings.Join(lines, " "); got != strings.Join(strings.Fields(text), " ") {
		t.Errorf("words lost: %q", got)
	}
}
