package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fungi-go/fungi/messages"
)

var layerEvents = []*messages.PullProgress{
	{Message: "pulling example:1"},
	{Layer: "aaa", Message: "Downloading", Current: 10, Total: 100},
	{Layer: "bbb", Message: "Downloading", Current: 5, Total: 50},
	{Layer: "aaa", Message: "Downloading", Current: 60, Total: 100},
	{Layer: "aaa", Message: "Downloading", Current: 100, Total: 100},
	{Layer: "aaa", Message: "Pull complete"},
	{Layer: "bbb", Message: "Pull complete"},
}

// Piped, each layer prints one line per event, not one per byte count,
// and no control sequence at all.
func TestProgressPipedOneLinePerEvent(t *testing.T) {
	var out bytes.Buffer
	p := newProgressPrinter(&out)
	for _, e := range layerEvents {
		p.print(e)
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Fatalf("control sequence in piped output: %q", out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"pulling example:1", "aaa Downloading", "bbb Downloading", "aaa Downloading", "aaa Pull complete", "bbb Pull complete"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[3], "100 B/100 B") {
		t.Errorf("the finished download line is %q", lines[3])
	}
}

// On a terminal the board is redrawn in place: the screen ends with one
// line per layer showing its latest status.
func TestProgressTerminalRedrawsInPlace(t *testing.T) {
	var out bytes.Buffer
	p := newProgressPrinter(&out)
	p.live = true
	for _, e := range layerEvents {
		p.print(e)
	}
	screen := emulate(out.String())
	want := []string{"pulling example:1", "aaa Pull complete", "bbb Pull complete"}
	if strings.Join(screen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("screen:\n%s\nwant:\n%s", strings.Join(screen, "\n"), strings.Join(want, "\n"))
	}
}

// emulate plays the two sequences the printer uses (cursor up N, clear
// line) and returns the screen's lines.
func emulate(s string) []string {
	var screen []string
	row := 0
	for len(s) > 0 {
		switch {
		case strings.HasPrefix(s, "\x1b[2K"):
			s = s[4:]
		case strings.HasPrefix(s, "\x1b["):
			end := strings.IndexByte(s, 'A')
			n := 0
			for _, c := range s[2:end] {
				n = n*10 + int(c-'0')
			}
			row -= n
			s = s[end+1:]
		default:
			nl := strings.IndexByte(s, '\n')
			for len(screen) <= row {
				screen = append(screen, "")
			}
			screen[row] = s[:nl]
			row++
			s = s[nl+1:]
		}
	}
	return screen
}
