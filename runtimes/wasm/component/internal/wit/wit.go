// Package wit reads the parts of WIT (the component model's interface
// definition language) that the component host is checked against:
// packages, interfaces, their functions, resources with their constructors,
// methods and static functions, and each function's parameters and result.
// Worlds, type bodies and gates (@since, @unstable, @deprecated) are skipped.
// It is a bounded reader for the WASI WIT files the tests use, not a full
// WIT parser: it rejects what it does not understand with the file and line.
package wit

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Limits of what one file or folder may hold; the WASI 0.2 files are far
// below them.
const (
	maxFileBytes = 1 << 20
	maxFiles     = 256
	maxDepth     = 64
)

// Package is one WIT package: its files' interfaces together.
type Package struct {
	Name       string // e.g. "wasi:io"
	Version    string // e.g. "0.2.9"
	Interfaces map[string]*Interface
}

// Interface is one interface: its functions by import name and the names
// of its resources.
type Interface struct {
	Name      string
	Funcs     map[string]*Func // by the name a component imports it under
	Resources []string
	Types     []string // every type it defines or uses, resources included
}

// Func is one function as a component imports it.
type Func struct {
	// Name is the import name: "poll", "[method]pollable.block",
	// "[constructor]fields", "[static]fields.from-list".
	Name     string
	Resource string // the resource of a constructor, method or static function
	Kind     string // "func", "method", "constructor" or "static"
	Params   []Param
	Result   string // the result type as written, "" for none
}

// Param is one named parameter; Type is as written, without spaces.
type Param struct{ Name, Type string }

// Signature renders the function as WIT writes it.
func (f *Func) Signature() string {
	ps := make([]string, len(f.Params))
	for i, p := range f.Params {
		ps[i] = p.Name + ": " + p.Type
	}
	s := "func(" + strings.Join(ps, ", ") + ")"
	if f.Result != "" {
		s += " -> " + f.Result
	}
	return s
}

// ParseFunc reads one function type in the form Signature renders
// ("func(len: u64) -> result<list<u8>,stream-error>"): the form in which the
// component host declares the WIT type of each host function, so that the
// declaration and the WIT compare through the same reader.
func ParseFunc(sig string) (*Func, error) {
	if len(sig) > maxFileBytes {
		return nil, fmt.Errorf("a signature of %d bytes, at most %d", len(sig), maxFileBytes)
	}
	toks, err := tokenize(sig)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", sig, err)
	}
	// fn reads up to the ";" that ends a function in a WIT file.
	p := &parser{toks: append(toks, token{";", 0})}
	f, err := p.fn("", "func", "")
	if err != nil {
		return nil, fmt.Errorf("%q: %w", sig, err)
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("%q: %q after the function", sig, p.peek())
	}
	return f, nil
}

// ReadDir reads every *.wit file directly in dir as one package.
func ReadDir(dir string) (*Package, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.wit"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no .wit files", dir)
	}
	if len(files) > maxFiles {
		return nil, fmt.Errorf("%s: %d .wit files, at most %d", dir, len(files), maxFiles)
	}
	sort.Strings(files)
	pkg := &Package{Interfaces: map[string]*Interface{}}
	for _, f := range files {
		if err := readFile(f, pkg); err != nil {
			return nil, err
		}
	}
	return pkg, nil
}

func readFile(path string, pkg *Package) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Size() > maxFileBytes {
		return fmt.Errorf("%s: %d bytes, at most %d", path, st.Size(), maxFileBytes)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	toks, err := tokenize(string(src))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	p := &parser{toks: toks, pkg: pkg}
	if err := p.file(); err != nil {
		return fmt.Errorf("%s:%d: %w", path, p.line(), err)
	}
	return nil
}

type token struct {
	text string
	line int
}

// tokenize splits WIT into words (identifiers, numbers, `%`-escaped names)
// and punctuation, dropping comments; "->" is one token.
func tokenize(s string) ([]token, error) {
	var out []token
	line := 1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case strings.HasPrefix(s[i:], "//"):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated comment", line)
			}
			line += strings.Count(s[i:i+2+end], "\n")
			i += end + 4
		case strings.HasPrefix(s[i:], "->"):
			out = append(out, token{"->", line})
			i += 2
		case isWord(c) && c != '-':
			// A name, perhaps escaped with one leading % (a keyword used as
			// a name); % stands nowhere else.
			j := i
			if s[j] == '%' {
				j++
			}
			k := j
			for k < len(s) && isWord(s[k]) && s[k] != '%' {
				k++
			}
			if k == j {
				return nil, fmt.Errorf("line %d: %q names nothing", line, s[i:min(k+1, len(s))])
			}
			out = append(out, token{s[j:k], line})
			i = k
		case strings.ContainsRune("{}()<>,;:=@./*_", rune(c)):
			out = append(out, token{string(c), line})
			i++
		default:
			return nil, fmt.Errorf("line %d: unexpected %q", line, c)
		}
	}
	return out, nil
}

func isWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '%' || c == '_'
}

type parser struct {
	toks []token
	pos  int
	pkg  *Package
}

func (p *parser) line() int {
	if p.pos < len(p.toks) {
		return p.toks[p.pos].line
	}
	if len(p.toks) > 0 {
		return p.toks[len(p.toks)-1].line
	}
	return 0
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos].text
	}
	return ""
}

func (p *parser) next() string {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *parser) expect(want string) error {
	if got := p.next(); got != want {
		return fmt.Errorf("want %q, found %q", want, got)
	}
	return nil
}

// skipGates skips @since(...), @unstable(...), @deprecated(...).
func (p *parser) skipGates() error {
	for p.peek() == "@" {
		p.next()
		p.next()
		if p.peek() == "(" {
			if err := p.skipBalanced("(", ")"); err != nil {
				return err
			}
		}
	}
	return nil
}

// skipBalanced skips from an opening token to its matching close.
func (p *parser) skipBalanced(open, close string) error {
	if err := p.expect(open); err != nil {
		return err
	}
	depth := 1
	for depth > 0 {
		switch p.next() {
		case "":
			return fmt.Errorf("unclosed %q", open)
		case open:
			depth++
			if depth > maxDepth {
				return fmt.Errorf("nested deeper than %d", maxDepth)
			}
		case close:
			depth--
		}
	}
	return nil
}

// skipTo skips past the next stop token.
func (p *parser) skipTo(stop string) error {
	for {
		switch p.next() {
		case stop:
			return nil
		case "":
			return fmt.Errorf("no %q before the end", stop)
		}
	}
}

func (p *parser) file() error {
	for p.peek() != "" {
		if err := p.skipGates(); err != nil {
			return err
		}
		switch kw := p.next(); kw {
		case "package":
			var name strings.Builder
			for p.peek() != ";" && p.peek() != "@" && p.peek() != "" {
				name.WriteString(p.next())
			}
			var version strings.Builder
			if p.peek() == "@" {
				p.next()
				for p.peek() != ";" && p.peek() != "" {
					version.WriteString(p.next())
				}
			}
			if p.pkg.Name != "" && p.pkg.Name != name.String() {
				return fmt.Errorf("package %s in a folder of package %s", name.String(), p.pkg.Name)
			}
			p.pkg.Name, p.pkg.Version = name.String(), version.String()
			if err := p.expect(";"); err != nil {
				return err
			}
		case "use":
			if err := p.skipTo(";"); err != nil {
				return err
			}
		case "world":
			p.next()
			if err := p.skipBalanced("{", "}"); err != nil {
				return err
			}
		case "interface":
			if err := p.iface(p.next()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected %q at the top level", kw)
		}
	}
	return nil
}

func (p *parser) iface(name string) error {
	in := p.pkg.Interfaces[name]
	if in == nil {
		in = &Interface{Name: name, Funcs: map[string]*Func{}}
		p.pkg.Interfaces[name] = in
	}
	if err := p.expect("{"); err != nil {
		return err
	}
	for {
		if err := p.skipGates(); err != nil {
			return err
		}
		switch kw := p.next(); kw {
		case "}":
			return nil
		case "":
			return fmt.Errorf("interface %s is not closed", name)
		case "use":
			// use a.{b, c as d};
			names, err := p.useNames()
			if err != nil {
				return err
			}
			in.Types = append(in.Types, names...)
		case "type":
			in.Types = append(in.Types, p.next())
			if err := p.skipTo(";"); err != nil {
				return err
			}
		case "record", "variant", "enum", "flags":
			in.Types = append(in.Types, p.next())
			if err := p.skipBalanced("{", "}"); err != nil {
				return err
			}
		case "resource":
			if err := p.resource(in); err != nil {
				return err
			}
		default:
			if err := p.expect(":"); err != nil {
				return fmt.Errorf("in interface %s after %q: %w", name, kw, err)
			}
			f, err := p.fn(kw, "func", "")
			if err != nil {
				return err
			}
			in.Funcs[f.Name] = f
		}
	}
}

func (p *parser) useNames() ([]string, error) {
	for p.peek() != "{" {
		if p.next() == "" {
			return nil, fmt.Errorf("use without {")
		}
	}
	p.next()
	var names []string
	for {
		n := p.next()
		if n == "" {
			return nil, fmt.Errorf("use list not closed")
		}
		if p.peek() == "as" {
			p.next()
			n = p.next()
		}
		names = append(names, n)
		switch sep := p.next(); sep {
		case ",":
			if p.peek() == "}" {
				p.next()
				return names, p.expect(";")
			}
		case "}":
			return names, p.expect(";")
		default:
			return nil, fmt.Errorf("unexpected %q in a use list", sep)
		}
	}
}

func (p *parser) resource(in *Interface) error {
	name := p.next()
	in.Resources = append(in.Resources, name)
	in.Types = append(in.Types, name)
	if p.peek() == ";" {
		p.next()
		return nil
	}
	if err := p.expect("{"); err != nil {
		return err
	}
	for {
		if err := p.skipGates(); err != nil {
			return err
		}
		switch kw := p.next(); kw {
		case "}":
			return nil
		case "":
			return fmt.Errorf("resource %s is not closed", name)
		case "constructor":
			f, err := p.params(&Func{Name: "[constructor]" + name, Resource: name, Kind: "constructor"})
			if err != nil {
				return err
			}
			if err := p.expect(";"); err != nil {
				return err
			}
			in.Funcs[f.Name] = f
		default:
			if err := p.expect(":"); err != nil {
				return fmt.Errorf("in resource %s after %q: %w", name, kw, err)
			}
			kind := "method"
			if p.peek() == "static" {
				p.next()
				kind = "static"
			}
			f, err := p.fn(kw, kind, name)
			if err != nil {
				return err
			}
			in.Funcs[f.Name] = f
		}
	}
}

// fn reads `func(params) [-> result];` after "name:".
func (p *parser) fn(name, kind, resource string) (*Func, error) {
	if err := p.expect("func"); err != nil {
		return nil, err
	}
	f := &Func{Name: name, Kind: kind, Resource: resource}
	switch kind {
	case "method":
		f.Name = "[method]" + resource + "." + name
	case "static":
		f.Name = "[static]" + resource + "." + name
	}
	if _, err := p.params(f); err != nil {
		return nil, err
	}
	if p.peek() == "->" {
		p.next()
		t, err := p.typ(";")
		if err != nil {
			return nil, err
		}
		f.Result = t
	}
	return f, p.expect(";")
}

// params reads `(name: type, ...)` into f.
func (p *parser) params(f *Func) (*Func, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	for p.peek() != ")" {
		name := p.next()
		if name == "" || !isWord(name[0]) {
			return nil, fmt.Errorf("a parameter of %s is named %q", f.Name, name)
		}
		if err := p.expect(":"); err != nil {
			return nil, fmt.Errorf("parameter %q of %s: %w", name, f.Name, err)
		}
		t, err := p.typ(",", ")")
		if err != nil {
			return nil, err
		}
		f.Params = append(f.Params, Param{name, t})
		if p.peek() == "," {
			p.next()
		}
	}
	p.next()
	return f, nil
}

// typ reads a type up to one of the stop tokens at nesting depth zero.
func (p *parser) typ(stops ...string) (string, error) {
	var b strings.Builder
	depth := 0
	for {
		t := p.peek()
		if t == "" {
			return "", fmt.Errorf("a type runs to the end of the file")
		}
		if depth == 0 && (len(stops) > 0 && contains(stops, t)) {
			if b.Len() == 0 {
				return "", fmt.Errorf("no type before %q", t)
			}
			return b.String(), nil
		}
		if !typeToken(t) {
			return "", fmt.Errorf("%q in a type", t)
		}
		switch t {
		case "<", "(":
			depth++
			if depth > maxDepth {
				return "", fmt.Errorf("a type nested deeper than %d", maxDepth)
			}
		case ">", ")":
			depth--
			if depth < 0 {
				return "", fmt.Errorf("unbalanced %q in a type", t)
			}
		}
		b.WriteString(p.next())
	}
}

// typeToken says whether t may stand in a type: a name, or the brackets and
// commas of list<…>, tuple<…>, result<_, …>. Anything else ("->", ":", ";"
// …) ends no type and is refused, so that what typ reads, written back
// without spaces, reads the same again.
func typeToken(t string) bool {
	switch t {
	case "<", ">", "(", ")", ",":
		return true
	}
	return t != "" && isWord(t[0]) && !strings.HasPrefix(t, "-")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
