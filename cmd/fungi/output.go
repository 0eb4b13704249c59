package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// jsonOptions give every --json output the same stable shape: camelCase
// field names, every field present even when empty.
var jsonOptions = protojson.MarshalOptions{EmitUnpopulated: true}

// marshalJSON is protojson's output re-indented by encoding/json, whose
// spacing, unlike protojson's, is stable from run to run.
func marshalJSON(m proto.Message) ([]byte, error) {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func printJSON(w io.Writer, m proto.Message) error {
	b, err := marshalJSON(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// printJSONList prints messages as one JSON array.
func printJSONList[M proto.Message](w io.Writer, items []M) error {
	if len(items) == 0 {
		_, err := fmt.Fprintln(w, "[]")
		return err
	}
	parts := make([]string, len(items))
	for i, m := range items {
		b, err := marshalJSON(m)
		if err != nil {
			return err
		}
		parts[i] = "  " + strings.ReplaceAll(string(b), "\n", "\n  ")
	}
	_, err := fmt.Fprintf(w, "[\n%s\n]\n", strings.Join(parts, ",\n"))
	return err
}

func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

func jsonMarshalIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }

// Text that came from a peer (names, IDs, usage, errors, log output) may
// hold terminal escape sequences: printed raw they could recolour, retitle
// or rewrite the user's terminal, or hide what is really there. Human
// output passes it through terminalSafe; --json keeps it exact, since JSON
// escapes control characters itself.

// terminalSafe is s with every terminal control sequence and control
// character removed, except newline and tab; invalid UTF-8 becomes U+FFFD.
func terminalSafe(s string) string {
	var f controlFilter
	out := f.filter(make([]byte, 0, len(s)), []byte(s))
	return string(f.finish(out))
}

// humanSafe is a copy of m whose every string field, at any depth, went
// through terminalSafe: what human output of a message from the daemon or
// a peer prints.
func humanSafe[M proto.Message](m M) M {
	if !m.ProtoReflect().IsValid() {
		return m
	}
	c := proto.Clone(m).(M)
	scrubMessage(c.ProtoReflect())
	return c
}

func scrubMessage(m protoreflect.Message) {
	var fields []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		fields = append(fields, fd)
		return true
	})
	for _, fd := range fields {
		switch {
		case fd.IsList():
			list := m.Mutable(fd).List()
			for i := 0; i < list.Len(); i++ {
				list.Set(i, scrubValue(fd, list.Get(i)))
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			type entry struct {
				k protoreflect.MapKey
				v protoreflect.Value
			}
			var entries []entry
			mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
				entries = append(entries, entry{k, v})
				return true
			})
			for _, e := range entries {
				v := scrubValue(fd.MapValue(), e.v)
				k := e.k
				if fd.MapKey().Kind() == protoreflect.StringKind {
					mp.Clear(k)
					k = protoreflect.ValueOfString(terminalSafe(k.String())).MapKey()
				}
				mp.Set(k, v)
			}
		default:
			m.Set(fd, scrubValue(fd, m.Get(fd)))
		}
	}
}

func scrubValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(terminalSafe(v.String()))
	case protoreflect.MessageKind, protoreflect.GroupKind:
		scrubMessage(v.Message())
	}
	return v
}

// terminalWriter passes a byte stream, such as a peer's service log,
// through the same filter; a sequence or character split across writes is
// still recognised.
type terminalWriter struct {
	w io.Writer
	f controlFilter
}

func (t *terminalWriter) Write(p []byte) (int, error) {
	if _, err := t.w.Write(t.f.filter(nil, p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close writes what an unfinished character at the end stood for.
func (t *terminalWriter) Close() error {
	if out := t.f.finish(nil); len(out) > 0 {
		_, err := t.w.Write(out)
		return err
	}
	return nil
}

// controlFilter is a byte-at-a-time reader of ECMA-48 sequences: it keeps
// only printable text, newline and tab. It holds no more than one partial
// UTF-8 character, whatever the input.
type controlFilter struct {
	state   filterState
	partial []byte // the start of a multi-byte UTF-8 character
}

type filterState uint8

const (
	inText      filterState = iota
	afterEsc                // ESC seen
	inEscape                // ESC + intermediate bytes, until a final byte
	inCSI                   // ESC [ or CSI: parameters until a final byte
	inString                // OSC, DCS, SOS, PM, APC: until BEL or ST
	inStringEsc             // ESC inside a string: ST if a backslash follows
)

func (f *controlFilter) filter(out, in []byte) []byte {
	for _, b := range in {
		out = f.feed(out, b)
	}
	return out
}

func (f *controlFilter) feed(out []byte, b byte) []byte {
	switch f.state {
	case afterEsc:
		f.state = inText
		switch {
		case b == '[':
			f.state = inCSI
		case b == ']' || b == 'P' || b == 'X' || b == '^' || b == '_':
			f.state = inString
		case b == 0x1b:
			f.state = afterEsc
		case b >= 0x20 && b <= 0x2f:
			f.state = inEscape
		case b >= 0x30 && b <= 0x7e:
			// a two-byte sequence such as ESC 7 or ESC c: dropped whole
		default:
			return f.text(out, b)
		}
		return out
	case inEscape:
		switch {
		case b >= 0x20 && b <= 0x2f:
		case b >= 0x30 && b <= 0x7e:
			f.state = inText
		default:
			f.state = inText
			return f.text(out, b)
		}
		return out
	case inCSI:
		switch {
		case b >= 0x20 && b <= 0x3f:
		case b >= 0x40 && b <= 0x7e:
			f.state = inText
		default:
			f.state = inText
			return f.text(out, b)
		}
		return out
	case inString, inStringEsc:
		switch {
		case f.state == inStringEsc && b == '\\', b == 0x07:
			f.state = inText
		case b == 0x1b:
			f.state = inStringEsc
		case f.state == inStringEsc:
			// ESC then something else: that ESC started a new sequence.
			f.state = afterEsc
			return f.feed(out, b)
		case b == '\n':
			// An unterminated string must not swallow the lines after it.
			f.state = inText
			return f.text(out, b)
		}
		return out
	}
	return f.text(out, b)
}

// text handles a byte outside any sequence.
func (f *controlFilter) text(out []byte, b byte) []byte {
	if len(f.partial) > 0 {
		if b&0xc0 == 0x80 {
			f.partial = append(f.partial, b)
			if !utf8.FullRune(f.partial) {
				return out
			}
			r, size := utf8.DecodeRune(f.partial)
			f.partial = f.partial[:0]
			if r == utf8.RuneError && size <= 1 {
				return utf8.AppendRune(out, utf8.RuneError)
			}
			return f.char(out, r)
		}
		// The character was cut short; b starts afresh.
		f.partial = f.partial[:0]
		out = utf8.AppendRune(out, utf8.RuneError)
	}
	switch {
	case b == '\n' || b == '\t':
		return append(out, b)
	case b == 0x1b:
		f.state = afterEsc
		return out
	case b < 0x20 || b == 0x7f:
		return out
	case b < 0x80:
		return append(out, b)
	case b >= 0xc2 && b <= 0xf4:
		f.partial = append(f.partial, b)
		return out
	default: // a stray continuation byte, or one UTF-8 never uses
		return utf8.AppendRune(out, utf8.RuneError)
	}
}

// char handles a complete multi-byte character: the C1 controls (U+0080
// to U+009F) are the 8-bit forms of ESC sequences and are treated so.
func (f *controlFilter) char(out []byte, r rune) []byte {
	switch {
	case r == 0x9b:
		f.state = inCSI
	case r == 0x90 || r == 0x98 || r == 0x9d || r == 0x9e || r == 0x9f:
		f.state = inString
	case r >= 0x80 && r <= 0x9f:
	default:
		out = utf8.AppendRune(out, r)
	}
	return out
}

// finish ends the input: an unfinished character becomes U+FFFD, an
// unfinished sequence is dropped.
func (f *controlFilter) finish(out []byte) []byte {
	if len(f.partial) > 0 {
		out = utf8.AppendRune(out, utf8.RuneError)
	}
	f.partial = f.partial[:0]
	f.state = inText
	return out
}
