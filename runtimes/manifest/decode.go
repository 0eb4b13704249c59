package manifest

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse decodes and validates a manifest. Every error it returns is an
// Errors value whose entries carry the line and column of the problem.
func Parse(data []byte) (*Manifest, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{syntaxError(err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, Errors{{Line: 1, Column: 1, Msg: "the manifest is empty; it needs apiVersion, kind, metadata and spec"}}
	}
	d := &decoder{positions: map[string]*yaml.Node{}}
	var m Manifest
	d.decode(doc.Content[0], reflect.ValueOf(&m).Elem(), "")
	if len(d.errs) == 0 {
		d.validate(&m)
	}
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	return &m, nil
}

// syntaxError turns yaml.v3's "yaml: line N: msg" into an Error.
func syntaxError(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{Msg: "not valid YAML: " + msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ":"); ok {
			if n, err := strconv.Atoi(num); err == nil {
				e.Line, e.Column = n, 1
				e.Msg = "not valid YAML:" + tail
			}
		}
	}
	return e
}

type decoder struct {
	errs      Errors
	positions map[string]*yaml.Node
}

func (d *decoder) fail(n *yaml.Node, field, format string, args ...any) {
	d.errs = append(d.errs, &Error{Line: n.Line, Column: n.Column, Field: field, Msg: fmt.Sprintf(format, args...)})
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
		return "a number (" + n.Value + ")"
	case "!!bool":
		return "a boolean (" + n.Value + ")"
	case "!!float":
		return "a number (" + n.Value + ")"
	case "!!null":
		return "null"
	}
	return fmt.Sprintf("the text %q", n.Value)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// decode fills v from n, checking kinds and field names against v's type.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.positions[path] = n
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if isNull(n) {
		return
	}
	if v.Type() == hostPortType {
		d.decodeHostPort(n, v, path)
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
			d.fail(n, path, "must be a whole number, found %s", n.Value)
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
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		fieldPath := joinPath(path, key.Value)
		idx, ok := fields[key.Value]
		if !ok {
			d.fail(key, fieldPath, "unknown field (known fields here: %s)", strings.Join(known, ", "))
			continue
		}
		if seen[key.Value] {
			d.fail(key, fieldPath, "appears twice")
			continue
		}
		seen[key.Value] = true
		d.decode(val, v.Field(idx), fieldPath)
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
		p := joinPath(path, key.Value)
		d.positions[p] = key
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
			d.fail(n, path, "must be auto or a port from 1 to 65535, found %s", n.Value)
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
