package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// LegacyMarker is the first key of a service file written for the Rust
// fungi 0.7 (`fungi: service/v1`), read by ConvertLegacy.
const LegacyMarker = "service/v1"

// IsLegacy says data is a Rust fungi 0.7 service file: YAML, or Markdown
// with YAML front matter, whose top-level `fungi` key is service/v1.
func IsLegacy(data []byte) bool {
	doc, _ := frontMatter(data)
	var head struct {
		Fungi string `yaml:"fungi"`
	}
	if yaml.Unmarshal(doc, &head) != nil {
		return false
	}
	return head.Fungi == LegacyMarker
}

// frontMatter returns the YAML of a file: the front matter between the
// first two `---` lines of a Markdown service file, or the whole file.
func frontMatter(data []byte) (doc []byte, lineOffset int) {
	if len(data) > MaxSize {
		return nil, 0
	}
	text := string(data)
	if !strings.HasPrefix(text, "---\n") && !strings.HasPrefix(text, "---\r\n") {
		return data, 0
	}
	rest := text[strings.Index(text, "\n")+1:]
	if end := strings.Index(rest, "\n---"); end >= 0 {
		return []byte(rest[:end+1]), 1
	}
	return data, 0
}

// legacyKeys are the keys a service/v1 file may use, by path; `*` stands
// for a name the file chooses (a publish entry, an env variable).
var legacyKeys = map[string]bool{
	"fungi": true, "id": true, "name": true, "run": true, "publish": true,
	"run.provider": true, "run.mode": true, "run.source": true, "run.args": true, "run.env": true, "run.mounts": true,
	"run.source.url": true, "run.source.file": true, "run.source.image": true, "run.source.sha256": true,
	"run.env.*": true, "run.mounts[].from": true, "run.mounts[].to": true,
	"publish.*": true, "publish.*.tcp": true, "publish.*.tcp.host": true, "publish.*.tcp.port": true,
	"publish.*.client": true, "publish.*.client.kind": true, "publish.*.client.path": true,
}

// ConvertLegacy reads a Rust fungi 0.7 service file and writes the same
// service as a fungi manifest. Every field with a meaning here is mapped;
// any other is refused by name with its line and column, and so is a
// value fungi cannot honour (a mount of the whole workspace).
func ConvertLegacy(data []byte) ([]byte, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("the service file is larger than %d bytes", MaxSize)
	}
	doc, offset := frontMatter(data)
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("service/v1 file: %w", err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("service/v1 file: the document is not a mapping")
	}
	var problems []string
	checkLegacyKeys(root.Content[0], "", offset, &problems)
	if len(problems) > 0 {
		return nil, fmt.Errorf("service/v1 file: %s", strings.Join(problems, "; "))
	}
	var f legacyFile
	if err := root.Content[0].Decode(&f); err != nil {
		return nil, fmt.Errorf("service/v1 file: %w", err)
	}
	m, err := f.manifest()
	if err != nil {
		return nil, fmt.Errorf("service/v1 file: %w", err)
	}
	var out bytes.Buffer
	out.WriteString("# Converted from a Rust fungi 0.7 service file (fungi: service/v1).\n")
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	enc.Close()
	if _, err := Parse(out.Bytes()); err != nil {
		return nil, fmt.Errorf("service/v1 file: the service it describes is refused here: %w", err)
	}
	return out.Bytes(), nil
}

func checkLegacyKeys(n *yaml.Node, path string, offset int, problems *[]string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			generic := p
			if path != "" && legacyKeys[path+".*"] {
				generic = path + ".*"
			}
			if !legacyKeys[p] && !legacyKeys[generic] {
				*problems = append(*problems, fmt.Sprintf("line %d column %d: %s has no meaning on this node; remove it", k.Line+offset, k.Column, p))
				continue
			}
			checkLegacyKeys(v, generic, offset, problems)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			checkLegacyKeys(c, path+"[]", offset, problems)
		}
	}
}

// legacyFile is the part of a service/v1 file fungi maps.
type legacyFile struct {
	Fungi string `yaml:"fungi"`
	ID    string `yaml:"id"`
	Name  string `yaml:"name"`
	Run   *struct {
		Provider string `yaml:"provider"`
		Mode     string `yaml:"mode"`
		Source   struct {
			URL    string `yaml:"url"`
			File   string `yaml:"file"`
			Image  string `yaml:"image"`
			SHA256 string `yaml:"sha256"`
		} `yaml:"source"`
		Args   []string          `yaml:"args"`
		Env    map[string]string `yaml:"env"`
		Mounts []struct {
			From string `yaml:"from"`
			To   string `yaml:"to"`
		} `yaml:"mounts"`
	} `yaml:"run"`
	Publish map[string]struct {
		TCP struct {
			Host string `yaml:"host"`
			Port int    `yaml:"port"`
		} `yaml:"tcp"`
		Client struct {
			Kind string `yaml:"kind"`
			Path string `yaml:"path"`
		} `yaml:"client"`
	} `yaml:"publish"`
}

func (f *legacyFile) manifest() (*Document, error) {
	m := &Document{APIVersion: APIVersion, Kind: Kind}
	m.Metadata.Name = f.ID
	if m.Metadata.Name == "" {
		m.Metadata.Name = f.Name
	}
	if m.Metadata.Name == "" {
		return nil, errors.New("id is required: the service's name")
	}
	if len(f.Publish) == 0 {
		return nil, errors.New("publish names no entry; fungi serves a service through at least one")
	}
	s := &m.Spec
	s.Expose.Enabled, s.Expose.ServiceID = true, m.Metadata.Name
	entries := make([]string, 0, len(f.Publish))
	for name := range f.Publish {
		entries = append(entries, name)
	}
	sort.Strings(entries)
	first := f.Publish[entries[0]]
	switch first.Client.Kind {
	case "", "tcp", "raw":
		s.Expose.Usage.Kind = "tcp"
	case "web", "ssh":
		s.Expose.Usage.Kind = first.Client.Kind
		s.Expose.Usage.Path = first.Client.Path
	default:
		return nil, fmt.Errorf("publish.%s.client.kind %q has no counterpart here; use web, ssh, tcp or raw", entries[0], first.Client.Kind)
	}
	if f.Run == nil {
		// No run: an existing TCP service, published as it is.
		s.Runtime = RuntimeExternal
		for _, name := range entries {
			e := f.Publish[name]
			host := e.TCP.Host
			if host == "" {
				host = "127.0.0.1"
			}
			if s.Source.Host != "" && s.Source.Host != host {
				return nil, fmt.Errorf("publish.%s.tcp.host %s: every entry of a service here is on one host (%s)", name, host, s.Source.Host)
			}
			s.Source.Host = host
			s.Ports = append(s.Ports, DocumentPort{Name: name, ServicePort: e.TCP.Port, Protocol: "tcp"})
		}
		return m, nil
	}
	r := f.Run
	switch r.Provider {
	case "docker":
		s.Runtime = RuntimeDocker
	case "wasmtime":
		s.Runtime = RuntimeWasmtime
	default:
		return nil, fmt.Errorf("run.provider %q: this node runs docker or wasmtime", r.Provider)
	}
	if r.Mode != "" && r.Mode != "http" {
		return nil, fmt.Errorf("run.mode %q: a wasm service here serves HTTP (mode http)", r.Mode)
	}
	s.Source.Image, s.Source.URL, s.Source.File, s.Source.SHA256 = r.Source.Image, r.Source.URL, r.Source.File, r.Source.SHA256
	s.Env, s.Command = r.Env, r.Args
	for i, mnt := range r.Mounts {
		host, err := legacyMountFrom(mnt.From)
		if err != nil {
			return nil, fmt.Errorf("run.mounts[%d].from: %w", i, err)
		}
		s.Mounts = append(s.Mounts, DocumentMount{HostPath: host, RuntimePath: mnt.To})
	}
	for _, name := range entries {
		e := f.Publish[name]
		if e.TCP.Host != "" && e.TCP.Host != "127.0.0.1" && e.TCP.Host != "localhost" {
			return nil, fmt.Errorf("publish.%s.tcp.host %s: a service fungi runs is reached on the node itself", name, e.TCP.Host)
		}
		p := DocumentPort{Name: name, HostPort: HostPort{Auto: true}, Protocol: "tcp"}
		if s.Runtime == RuntimeDocker {
			p.ServicePort = e.TCP.Port // the port inside the container
		}
		// A wasm service here serves HTTP on a host port fungi picks, so
		// the port the file names has no counterpart and is not used.
		s.Ports = append(s.Ports, p)
	}
	return m, nil
}

// legacyMountFrom maps a mount source: the service's own data folder, or
// an absolute host path (which the node's mounts.allowed must cover).
func legacyMountFrom(from string) (string, error) {
	switch {
	case from == "$fungi.service.data":
		return "${APP_HOME}", nil
	case strings.HasPrefix(from, "$fungi.service.data/"):
		return "${APP_HOME}/" + strings.TrimPrefix(from, "$fungi.service.data/"), nil
	case strings.HasPrefix(from, "$"):
		return "", fmt.Errorf("%s has no counterpart here; mount ${APP_HOME} (the service's data folder) or an absolute path under mounts.allowed", from)
	case strings.HasPrefix(from, "/"):
		return from, nil
	}
	return "", fmt.Errorf("%q: give an absolute host path or $fungi.service.data", from)
}
