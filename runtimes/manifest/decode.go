package manifest

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Parse decodes and validates a manifest. Every error it returns is an
// Errors value whose entries carry the line and column of the problem.
//
// Its work is linear in the size of data, which is at most MaxSize: YAML
// aliases may not multiply the document (yaml.v3 itself only guards very
// large documents, and not at all when decoding to a yaml.Node), lists and
// maps are counted before they are walked, and only the first
// MaxReportedErrors problems are spelled out.
func Parse(data []byte) (*Manifest, error) {
	return parse(data, nil)
}

// NodeRules are the checks only the node that will run a service can make.
type NodeRules struct {
	// AllowedMounts are the host folders, besides the service's own data
	// folder, that mounts may name (config.yaml mounts.allowed).
	AllowedMounts []string
}

// ParseForNode is Parse plus the node's own rules: a mount whose host path
// is neither under ${APP_HOME} nor under an allowed folder can never start,
// so it is refused here, at its line and column, rather than at start.
func ParseForNode(data []byte, rules NodeRules) (*Manifest, error) {
	return parse(data, &rules)
}

func parse(data []byte, rules *NodeRules) (*Manifest, error) {
	m, _, err := parseCounting(data, rules)
	return m, err
}

// parseCounting is parse that also says how many nodes and entries the
// decoder visited.
func parseCounting(data []byte, rules *NodeRules) (*Manifest, int, error) {
	if len(data) > MaxSize {
		return nil, 0, Errors{{Line: 1, Column: 1, Msg: fmt.Sprintf("the manifest is %d bytes; a manifest may be at most %d bytes (1 MiB). A service description fits in a few kilobytes: check that this is the right file", len(data), MaxSize)}}
	}
	if e := checkEncoding(data); e != nil {
		return nil, 0, Errors{e}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, 0, Errors{syntaxError(err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, 0, Errors{{Line: 1, Column: 1, Msg: "the manifest is empty; it needs apiVersion, kind, metadata and spec"}}
	}
	raw := countNodes(&doc)
	d := &decoder{
		positions:   map[string]*yaml.Node{},
		aliasBudget: min(MaxAliasExpansion*raw, MaxAliasNodes),
		rules:       rules,
	}
	var m Manifest
	d.decode(doc.Content[0], reflect.ValueOf(&m).Elem(), "")
	if len(d.errs) == 0 && d.omitted == 0 {
		d.validate(&m)
	}
	if errs := d.result(); len(errs) > 0 {
		return nil, d.work, errs
	}
	return &m, d.work, nil
}

// checkEncoding refuses what yaml.v3 would refuse without a line number:
// text that is not UTF-8 and control characters. A manifest is UTF-8 text;
// yaml.v3 would also take UTF-16, which no editor of manifests produces.
func checkEncoding(data []byte) *Error {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return &Error{Line: line, Column: col, Msg: fmt.Sprintf("byte 0x%02x is not UTF-8 text; save the manifest as UTF-8", data[i])}
		case r == '\n':
			line, col = line+1, 0
		case r == '\t' || r == '\r' || r == 0x85:
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfffe || r == 0xffff:
			return &Error{Line: line, Column: col, Msg: fmt.Sprintf("control character %U is not allowed in a manifest; remove it", r)}
		}
		i += size
		col++
	}
	return nil
}

// countNodes counts the nodes written in the document; an alias counts once,
// its target is counted where it is written.
func countNodes(n *yaml.Node) int {
	count := 0
	stack := []*yaml.Node{n}
	for len(stack) > 0 {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		count++
		if top.Kind != yaml.AliasNode {
			stack = append(stack, top.Content...)
		}
	}
	return count
}

// syntaxError turns yaml.v3's "yaml: line N: msg" into an Error. yaml.v3
// leaves the line out when the problem is on the first line.
func syntaxError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{Line: 1, Column: 1, Msg: "not valid YAML: " + msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ":"); ok {
			if n, err := strconv.Atoi(num); err == nil && n > 0 {
				e.Line = n
				e.Msg = "not valid YAML:" + tail
			}
		}
	}
	return e
}

// collectionLimits bounds the lists and maps of a manifest; each is checked
// before its entries are walked.
var collectionLimits = map[string]struct {
	max  int
	what string
}{
	"spec.env":     {MaxEnv, "environment variables"},
	"spec.ports":   {MaxPorts, "ports"},
	"spec.mounts":  {MaxMounts, "mounts"},
	"spec.command": {MaxCommandArgs, "command arguments"},

	"spec.allowOutboundHttp": {MaxOutboundHosts, "hosts"},
	"spec.network.connect":   {MaxConnect, "host:port entries"},
}

type decoder struct {
	errs Errors
	// omitted counts the problems past MaxReportedErrors; firstOmitted is
	// where the first of them is.
	omitted      int
	firstOmitted *yaml.Node
	positions    map[string]*yaml.Node
	rules        *NodeRules

	// aliasDepth is how many aliases the decoder is inside; while it is
	// above zero every node visited is charged to aliasBudget.
	aliasDepth  int
	aliasBudget int
	// exhausted stops the walk once the budget is spent.
	exhausted bool
	// work counts the nodes and entries visited, for the fuzz test's check
	// that decoding stays linear.
	work int
}

func (d *decoder) fail(n *yaml.Node, field, format string, args ...any) {
	d.report(false, n, field, format, args...)
}

// report records a problem; one that must be seen is listed even past
// MaxReportedErrors.
func (d *decoder) report(mustShow bool, n *yaml.Node, field, format string, args ...any) {
	if len(d.errs) >= MaxReportedErrors && !mustShow {
		if d.omitted == 0 {
			d.firstOmitted = n
		}
		d.omitted++
		return
	}
	d.errs = append(d.errs, &Error{Line: n.Line, Column: n.Column, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// result is the problems found, in text order, with the ones past
// MaxReportedErrors summed up in a last entry.
func (d *decoder) result() Errors {
	errs := d.errs
	slices.SortStableFunc(errs, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	if d.omitted > 0 {
		errs = append(errs, &Error{Line: d.firstOmitted.Line, Column: d.firstOmitted.Column, omitted: d.omitted,
			Msg: fmt.Sprintf("and %d more problems from here on; fix the ones above and parse again to see them", d.omitted)})
	}
	return errs
}

// charge counts a visit of n (and of its direct entries) made through an
// alias, and reports whether decoding may go on.
func (d *decoder) charge(n *yaml.Node, via *yaml.Node) bool {
	if d.exhausted {
		return false
	}
	d.work += 1 + len(n.Content)
	if d.aliasDepth == 0 {
		return true
	}
	d.aliasBudget -= 1 + len(n.Content)
	if d.aliasBudget < 0 {
		d.exhausted = true
		d.report(true, via, "", "the aliases of this manifest repeat more of it than it is long (alias *%s); write the values out instead of repeating anchors", short(via.Value))
		return false
	}
	return true
}

var hostPortType = reflect.TypeOf(HostPort{})

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!int":
		return "a number (" + short(n.Value) + ")"
	case "!!bool":
		return "a boolean (" + short(n.Value) + ")"
	case "!!float":
		return "a number (" + short(n.Value) + ")"
	case "!!null":
		return "null"
	}
	return fmt.Sprintf("the text %q", short(n.Value))
}

// short keeps a value quoted in an error readable however long it is.
func short(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// decode fills v from n, checking kinds and field names against v's type.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.positions[path] = n
	if n.Kind == yaml.AliasNode {
		via := n
		n = n.Alias
		d.aliasDepth++
		defer func() { d.aliasDepth-- }()
		if !d.charge(n, via) {
			return
		}
	} else if !d.charge(n, n) {
		return
	}
	if isNull(n) {
		return
	}
	if v.Type() == hostPortType {
		d.decodeHostPort(n, v, path)
		return
	}
	if limit, ok := collectionLimits[path]; ok {
		entries := len(n.Content)
		if n.Kind == yaml.MappingNode {
			entries /= 2
		}
		if (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && entries > limit.max {
			d.fail(n, path, "has %d %s; a manifest may have at most %d", entries, limit.what, limit.max)
			return
		}
	}
	if v.Type() == outboundType {
		d.decodeOutbound(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "must be a list, found %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		d.decodeStringMap(n, v, path)
	case reflect.String:
		// A number written where text belongs (a hash of only digits, a
		// name like 2024) keeps its exact spelling; true/false and null
		// are more likely mistakes.
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float") {
			d.fail(n, path, "must be text, found %s (quote it if you mean text)", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.fail(n, path, "must be a whole number, found %s", kindName(n))
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil {
			d.fail(n, path, "must be a whole number, found %s", short(n.Value))
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.fail(n, path, "must be true or false, found %s", kindName(n))
			return
		}
		var b bool
		_ = n.Decode(&b)
		v.SetBool(b)
	default:
		panic("manifest: no decoder for " + v.Type().String())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping of fields, found %s", kindName(n))
		return
	}
	t := v.Type()
	fields := map[string]int{}
	var known []string
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		fields[tag] = i
		known = append(known, tag)
	}
	knownText := strings.Join(known, ", ")
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		fieldPath := joinPath(path, short(key.Value))
		idx, ok := fields[key.Value]
		if !ok || key.Kind != yaml.ScalarNode {
			d.fail(key, fieldPath, "unknown field (known fields here: %s)", knownText)
			continue
		}
		if seen[key.Value] {
			d.fail(key, fieldPath, "appears twice")
			continue
		}
		seen[key.Value] = true
		d.decode(val, v.Field(idx), fieldPath)
		if d.exhausted {
			return
		}
	}
}

func (d *decoder) decodeStringMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "must be a mapping of NAME: value, found %s", kindName(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		p := joinPath(path, short(key.Value))
		d.positions[p] = key
		if key.Kind != yaml.ScalarNode || key.Value == "" || strings.ContainsAny(key.Value, "=\x00") {
			d.fail(key, p, "is not a valid environment variable name")
			continue
		}
		if val.Kind == yaml.AliasNode {
			if d.aliasDepth++; !d.charge(val.Alias, val) {
				d.aliasDepth--
				return
			}
			d.aliasDepth--
			val = val.Alias
		}
		if val.Kind != yaml.ScalarNode || isNull(val) {
			d.fail(val, p, "must be a single value, found %s", kindName(val))
			continue
		}
		if m.MapIndex(reflect.ValueOf(key.Value)).IsValid() {
			d.fail(key, p, "appears twice")
			continue
		}
		// Environment values are text to the service; an unquoted true or
		// 8080 means the same text.
		m.SetMapIndex(reflect.ValueOf(key.Value), reflect.ValueOf(val.Value))
	}
	v.Set(m)
}

func (d *decoder) decodeHostPort(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && n.Value == "auto" {
		v.Set(reflect.ValueOf(HostPort{Auto: true}))
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		p, err := strconv.Atoi(n.Value)
		if err != nil || p < 1 || p > 65535 {
			d.fail(n, path, "must be auto or a port from 1 to 65535, found %s", short(n.Value))
			return
		}
		v.Set(reflect.ValueOf(HostPort{Port: p}))
		return
	}
	d.fail(n, path, "must be auto or a port from 1 to 65535, found %s", kindName(n))
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}
