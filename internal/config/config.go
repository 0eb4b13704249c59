// Package config is a node's config.yaml: the Config it decodes to, its
// defaults, and loading (file.go), and the documented keys that
// `fungi config` and the dashboard read and edit one at a time (here).
//
// Edits go through the YAML node tree, so the owner's comments and layout
// survive, and the file is replaced atomically only when the result is a
// valid config. Each key also says whether a running daemon applies a
// change at once (on reload) or only when it starts again.
//
// The package works on a file path and knows nothing of the node's folder:
// internal/home, which lays the folder out, imports it.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"gopkg.in/yaml.v3"

	"github.com/fungi-go/fungi/internal/atomicfile"
)

// Kind is the type of a key's value.
type Kind int

// The kinds of values config.yaml holds.
const (
	Bool Kind = iota
	Int
	Duration
	List
	String
)

// Key is one documented config.yaml key.
type Key struct {
	// Name is the dotted path, e.g. mounts.allowed.
	Name string
	Kind Kind
	// Live says a running daemon applies a change on reload (SIGHUP or
	// the CLI's edit); otherwise the change needs a daemon restart.
	Live bool
	// When is what "live" means for this key, shown by `config get`.
	When string
	// check validates one value (one element of a list).
	check func(string) error
}

const maxListLen = 1024

// Keys are the keys `fungi config` reads and writes, in README order.
var Keys = []Key{
	{Name: "listen", Kind: List, When: "after a daemon restart", check: checkMultiaddr},
	{Name: "mdns", Kind: Bool, Live: true, When: "at once"},
	{Name: "portMapping", Kind: Bool, When: "after a daemon restart"},
	{Name: "external.allowedHosts", Kind: List, Live: true, When: "for later pulls and starts", check: nonEmpty},
	{Name: "relays", Kind: List, Live: true, When: "at once", check: checkRelay},
	{Name: "discovery.dht", Kind: Bool, When: "after a daemon restart"},
	{Name: "bootstrap", Kind: List, When: "after a daemon restart", check: checkBootstrap},
	{Name: "relay.listen", Kind: List, When: "at the next `fungi relay`", check: checkMultiaddr},
	{Name: "relay.allow", Kind: List, When: "at the next `fungi relay`", check: checkPeerID},
	{Name: "relay.maxReservations", Kind: Int, When: "at the next `fungi relay`"},
	{Name: "relay.maxCircuits", Kind: Int, When: "at the next `fungi relay`"},
	{Name: "relay.reservationTTL", Kind: Duration, When: "at the next `fungi relay`"},
	{Name: "relay.circuitDuration", Kind: Duration, When: "at the next `fungi relay`"},
	{Name: "relay.circuitBytes", Kind: Int, When: "at the next `fungi relay`"},
	{Name: "wasm.memoryLimitMB", Kind: Int, When: "after a daemon restart"},
	{Name: "wasm.requestTimeout", Kind: Duration, When: "after a daemon restart"},
	{Name: "wasm.maxConcurrency", Kind: Int, When: "after a daemon restart"},
	{Name: "mounts.allowed", Kind: List, Live: true, When: "for later pulls and service starts", check: checkFolder},
	{Name: "ui.enabled", Kind: Bool, When: "after a daemon restart"},
	{Name: "ui.listen", Kind: String, When: "after a daemon restart", check: nonEmpty},
	{Name: "names.enabled", Kind: Bool, When: "after a daemon restart"},
	{Name: "names.listen", Kind: String, When: "after a daemon restart", check: nonEmpty},
	{Name: "log.level", Kind: String, When: "after a daemon restart", check: checkLevel},
}

// Lookup finds a documented key.
func Lookup(name string) (Key, error) {
	for _, k := range Keys {
		if k.Name == name {
			return k, nil
		}
	}
	names := make([]string, len(Keys))
	for i, k := range Keys {
		names[i] = k.Name
	}
	return Key{}, fmt.Errorf("no config key %q; the keys are %s", name, strings.Join(names, ", "))
}

// NeedsRestart says what applying k takes, for the CLI's answer.
func (k Key) NeedsRestart() bool { return !k.Live && !strings.HasPrefix(k.Name, "relay.") }

// Get returns the value of key in the config.yaml at path (defaults included):
// one string per list element, or one string for a scalar.
func Get(path string, name string) ([]string, error) {
	k, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	cfg, err := Load(path)
	if err != nil {
		return nil, err
	}
	return Values(cfg, k.Name)
}

// Values returns the value of the key name in cfg, as Get does.
func Values(cfg Config, name string) ([]string, error) {
	k, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	doc, err := yamlOf(cfg)
	if err != nil {
		return nil, err
	}
	n := find(doc, strings.Split(k.Name, "."))
	if n == nil {
		return nil, nil
	}
	if k.Kind == List {
		out := []string{}
		for _, e := range n.Content {
			out = append(out, e.Value)
		}
		return out, nil
	}
	if k.Kind == Duration {
		var d time.Duration
		if err := n.Decode(&d); err == nil {
			return []string{d.String()}, nil
		}
	}
	return []string{n.Value}, nil
}

// Changed lists the documented keys whose values differ between a and b.
func Changed(a, b Config) []Key {
	var out []Key
	for _, k := range Keys {
		va, _ := Values(a, k.Name)
		vb, _ := Values(b, k.Name)
		if !slices.Equal(va, vb) {
			out = append(out, k)
		}
	}
	return out
}

// Set replaces the value of key: values are the list's elements, or one
// scalar. The file keeps its comments; it is written only if valid.
func Set(path string, name string, values []string) error {
	k, err := Lookup(name)
	if err != nil {
		return err
	}
	if k.Kind != List && len(values) != 1 {
		return fmt.Errorf("%s takes one value, got %d", k.Name, len(values))
	}
	if len(values) > maxListLen {
		return fmt.Errorf("%s: %d values is more than the %d allowed", k.Name, len(values), maxListLen)
	}
	for _, v := range values {
		if err := k.validate(v); err != nil {
			return err
		}
	}
	return edit(path, func(root *yaml.Node) error {
		setNode(root, strings.Split(k.Name, "."), valueNode(k, values))
		return nil
	})
}

// Add appends value to a list key unless it is there already. It reports
// whether the list changed.
func Add(path string, name, value string) (bool, error) {
	cur, k, err := listOf(path, name)
	if err != nil {
		return false, err
	}
	if err := k.validate(value); err != nil {
		return false, err
	}
	if slices.Contains(cur, value) {
		return false, nil
	}
	return true, Set(path, name, append(cur, value))
}

// Remove takes value out of a list key. It reports whether it was there.
func Remove(path string, name, value string) (bool, error) {
	cur, _, err := listOf(path, name)
	if err != nil {
		return false, err
	}
	i := slices.Index(cur, value)
	if i < 0 {
		return false, nil
	}
	return true, Set(path, name, slices.Delete(cur, i, i+1))
}

func listOf(path string, name string) ([]string, Key, error) {
	k, err := Lookup(name)
	if err != nil {
		return nil, k, err
	}
	if k.Kind != List {
		return nil, k, fmt.Errorf("%s is not a list", name)
	}
	cur, err := Get(path, name)
	return cur, k, err
}

func (k Key) validate(v string) error {
	var err error
	switch k.Kind {
	case Bool:
		_, err = parseBool(v)
	case Int:
		var n int64
		n, err = strconv.ParseInt(v, 10, 64)
		if err == nil && n < 0 {
			err = errors.New("want a number of zero or more")
		} else if err != nil {
			err = errors.New("want a whole number")
		}
	case Duration:
		var d time.Duration
		d, err = time.ParseDuration(v)
		if err == nil && d <= 0 {
			err = errors.New("want a positive duration")
		} else if err != nil {
			err = errors.New("want a duration such as 30s or 1h")
		}
	case List, String:
		err = k.check(v)
	}
	if err != nil {
		return fmt.Errorf("%s: %q: %v", k.Name, v, err)
	}
	return nil
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty")
	}
	return nil
}

func checkLevel(v string) error {
	switch v {
	case "debug", "info", "warn", "error":
		return nil
	}
	return errors.New("want debug, info, warn or error")
}

func checkMultiaddr(v string) error {
	if !strings.HasPrefix(v, "/") {
		return errors.New("want a multiaddr such as /ip4/0.0.0.0/tcp/4433")
	}
	return nil
}

func checkRelay(v string) error {
	if _, err := peer.AddrInfoFromString(v); err != nil {
		return fmt.Errorf("%v (a relay address ends with /p2p/<relay peer ID>, as `fungi relay` prints it)", err)
	}
	return nil
}

func checkBootstrap(v string) error {
	if _, err := peer.AddrInfoFromString(v); err != nil {
		return fmt.Errorf("%v (a bootstrap address ends with /p2p/<peer ID>, as `fungi relay serve` prints it)", err)
	}
	return nil
}

func checkPeerID(v string) error {
	if _, err := peer.Decode(v); err != nil {
		return errors.New("not a peer ID")
	}
	return nil
}

func checkFolder(v string) error {
	if !filepath.IsAbs(v) {
		return errors.New("want an absolute folder path")
	}
	return nil
}

func valueNode(k Key, values []string) *yaml.Node {
	if k.Kind == List {
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if len(values) == 0 {
			n.Style = yaml.FlowStyle
		}
		for _, v := range values {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v})
		}
		return n
	}
	tag := map[Kind]string{Bool: "!!bool", Int: "!!int", Duration: "!!str", String: "!!str"}[k.Kind]
	v := values[0]
	if b, err := parseBool(v); k.Kind == Bool && err == nil {
		v = strconv.FormatBool(b) // on/off are written as YAML 1.2 reads them
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v}
}

// parseBool reads a switch as people write it: true/false, on/off, yes/no.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "on", "yes", "1":
		return true, nil
	case "false", "off", "no", "0":
		return false, nil
	}
	return false, errors.New("want true or false (on/off and yes/no work too)")
}

// maxConfigSize bounds what is read: config.yaml is a page of text.
const maxConfigSize = 1 << 20

// edit applies change to the file's node tree, checks that the result is a
// valid config, and replaces the file atomically.
func edit(path string, change func(root *yaml.Node) error) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(data) > maxConfigSize {
		return fmt.Errorf("%s is %d bytes, more than a config may be (%d); fix the file by hand", path, len(data), maxConfigSize)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %v; fix the file by hand", path, err)
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s is not a mapping of keys; fix the file by hand", path)
	}
	if err := change(doc.Content[0]); err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	enc.Close()
	if err := validate(buf.Bytes()); err != nil {
		return fmt.Errorf("the edit would make %s invalid: %v", path, err)
	}
	return atomicfile.Write(path, buf.Bytes(), 0o600)
}

// validate decodes data as Load does.
func validate(data []byte) error {
	c := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(&c)
}

// yamlOf is cfg as a node tree, to read keys by path.
func yamlOf(cfg Config) (*yaml.Node, error) {
	var doc yaml.Node
	if err := doc.Encode(cfg); err != nil {
		return nil, err
	}
	return &doc, nil
}

// find walks a mapping node along path.
func find(n *yaml.Node, path []string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for _, p := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == p {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// setNode puts value at path under the mapping m, creating mappings on the
// way, and keeps the comments and flow style of the node it replaces.
func setNode(m *yaml.Node, path []string, value *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != path[0] {
			continue
		}
		old := m.Content[i+1]
		if len(path) > 1 {
			if old.Kind != yaml.MappingNode {
				old = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: old.Style & yaml.FlowStyle}
				m.Content[i+1] = old
			}
			setNode(old, path[1:], value)
			return
		}
		value.HeadComment, value.LineComment, value.FootComment = old.HeadComment, old.LineComment, old.FootComment
		if old.Style&yaml.FlowStyle != 0 || m.Style&yaml.FlowStyle != 0 {
			value.Style |= yaml.FlowStyle
		}
		m.Content[i+1] = value
		return
	}
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: path[0]}
	if len(path) > 1 {
		child := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		m.Content = append(m.Content, key, child)
		setNode(child, path[1:], value)
		return
	}
	if m.Style&yaml.FlowStyle != 0 {
		value.Style |= yaml.FlowStyle
	}
	m.Content = append(m.Content, key, value)
}
