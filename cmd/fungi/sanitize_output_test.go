package main

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fungi-go/fungi/messages"
)

func TestTerminalSafeStripsControlSequencesKeepsText(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"colour", "\x1b[1;31mred\x1b[0m", "red"},
		{"clear screen and home", "\x1b[2J\x1b[Hname", "name"},
		{"window title (OSC, BEL)", "a\x1b]0;pwned\x07b", "ab"},
		{"hyperlink (OSC, ST)", "a\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\b", "alinkb"},
		{"device control string", "a\x1bPq#0;2;0;0;0\x1b\\b", "ab"},
		{"two-byte sequences", "\x1bc\x1b7a\x1b8", "a"},
		{"charset designation", "\x1b(Ba", "a"},
		{"8-bit CSI", "\u009b31mX\u009b0m", "X"},
		{"8-bit OSC", "a\u009d0;t\x07b", "ab"},
		{"C0 controls", "a\rb\bc\x07d\x00e\x7ff\x0bg\x0ch", "abcdefgh"},
		{"newline and tab kept", "line 1\n\tline 2\n", "line 1\n\tline 2\n"},
		{"unicode kept", "Café ☕ 日本語 🍄", "Café ☕ 日本語 🍄"},
		{"invalid UTF-8", "a\xffb\xc0\x80c", "a\uFFFDb\uFFFD\uFFFDc"},
		{"cut-off character", "ab\xe2\x82", "ab\uFFFD"},
		{"cut-off character then text", "\xe2Ab", "\uFFFDAb"},
		{"unterminated OSC stops at the line's end", "\x1b]0;title\nnext line", "\nnext line"},
		{"unterminated CSI", "a\x1b[31", "a"},
		{"ESC ends a string and starts a sequence", "\x1b]0;t\x1b[31mX", "X"},
	} {
		if got := terminalSafe(c.in); got != c.want {
			t.Errorf("%s: terminalSafe(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

// assertTerminalInert fails if s could drive a terminal: a control byte
// other than newline and tab, a C1 control, or invalid UTF-8.
func assertTerminalInert(t *testing.T, in, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("terminalSafe(%q) = %q: not valid UTF-8", in, s)
	}
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) {
			t.Fatalf("terminalSafe(%q) = %q: control %U left in", in, s, r)
		}
	}
}

func FuzzTerminalSafe(f *testing.F) {
	for _, s := range []string{"\x1b[31mx", "\x1b]0;t\x07", "\u009b1m", "\xe2\x82\xac", "plain\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) { assertTerminalInert(t, in, terminalSafe(in)) })
}

func TestTerminalSafeOnRandomBytes(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := []byte("\x1b\x07\x9b\x9d\xc2\xe2\x82\xac[];\\0123mPa\n\t\r\x7f\xff")
	for range 20000 {
		b := make([]byte, rng.Intn(24))
		for i := range b {
			b[i] = alphabet[rng.Intn(len(alphabet))]
		}
		assertTerminalInert(t, string(b), terminalSafe(string(b)))
	}
}

// A log arrives in chunks that cut sequences and characters anywhere: the
// writer must give what terminalSafe gives for the whole, however cut.
func TestTerminalWriterAcrossChunkBoundaries(t *testing.T) {
	log := "ok \x1b[1;31mfailed\x1b[0m \x1b]0;title\x07café ☕\n\u009b2Jnext\tline\n"
	want := terminalSafe(log)
	if strings.ContainsRune(want, 0x1b) || !strings.Contains(want, "failed café ☕\n") {
		t.Fatalf("terminalSafe of the log = %q", want)
	}
	for cut := 1; cut <= len(log); cut++ {
		var out bytes.Buffer
		w := &terminalWriter{w: &out}
		for i := 0; i < len(log); i += cut {
			chunk := []byte(log[i:min(i+cut, len(log))])
			if n, err := w.Write(chunk); err != nil || n != len(chunk) {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		w.Close()
		if out.String() != want {
			t.Fatalf("chunks of %d bytes: got %q, want %q", cut, out.String(), want)
		}
	}
}

func TestHumanSafeCleansEveryStringAndLeavesTheOriginal(t *testing.T) {
	evil := "\x1b[2J\x1b[31mEvil\x1b]0;pwned\x07 Name"
	entry := &messages.CatalogEntry{
		ServiceId:   "svc\x1b[8m",
		DisplayName: evil,
		Usage:       "web\x07",
		Path:        "/\x1b[1A",
		Ports:       []*messages.CatalogPort{{Name: "http\x1b[0m"}},
	}
	safe := humanSafe(entry)
	if safe.DisplayName != "Evil Name" || safe.ServiceId != "svc" || safe.Usage != "web" || safe.Path != "/" || safe.Ports[0].Name != "http" {
		t.Fatalf("humanSafe left control sequences in: %v", safe)
	}
	if entry.DisplayName != evil || entry.Ports[0].Name != "http\x1b[0m" {
		t.Fatalf("humanSafe changed the original, which --json prints exactly: %v", entry)
	}
	var out bytes.Buffer
	if err := printJSON(&out, entry); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"displayName": "\u001b[2J\u001b[31mEvil\u001b]0;pwned\u0007 Name"`) {
		t.Fatalf("--json no longer carries the exact name, escaped by JSON:\n%s", out.String())
	}
	if bytes.IndexByte(out.Bytes(), 0x1b) >= 0 {
		t.Fatalf("--json carries a raw ESC byte:\n%q", out.String())
	}
	var nilEntry *messages.CatalogEntry
	if humanSafe(nilEntry) != nil {
		t.Fatal("humanSafe of nil is not nil")
	}
}

// An error relayed from a peer keeps its words and its status code.
func TestErrorsFromThePeerAreMadeSafe(t *testing.T) {
	err := terminalSafeError(status.Error(codes.NotFound, "no service \x1b[31m\"x\"\x1b]0;t\x07 on the peer"))
	s, ok := status.FromError(err)
	if !ok || s.Code() != codes.NotFound || s.Message() != `no service "x" on the peer` {
		t.Fatalf("got %v (code %v), want NotFound with the text kept and the sequences gone", err, s.Code())
	}
	plain := status.Error(codes.Unavailable, "peer offline")
	if terminalSafeError(plain) != plain {
		t.Fatal("a clean error was rewritten")
	}
	if got := message(terminalSafeError(errorString("bad \x1b[2Jthing"))); got != "bad thing" {
		t.Fatalf("a plain error: %q", got)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
