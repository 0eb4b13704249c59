// Package manifest is the service manifest of Fungi (apiVersion
// fungi.dev/v1alpha1, kind ServiceManifest): its model, strict decoding with
// line and column in every error, and the rules a manifest must meet before a
// node accepts it.
package manifest

import (
	"fmt"
	"strconv"
)

// APIVersion and Kind are the only values a manifest may carry in its header.
const (
	APIVersion = "fungi.dev/v1alpha1"
	Kind       = "ServiceManifest"
)

// Runtime names as they appear in a normalized manifest.
const (
	RuntimeDocker   = "docker"
	RuntimeWasmtime = "wasmtime"
)

// Restart policies.
const (
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
	RestartNever     = "never"
)

// AppHomeVar is replaced in mount host paths by the service's data folder.
const AppHomeVar = "${APP_HOME}"

// Manifest is one service as its owner described it.
type Manifest struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Spec       Spec     `yaml:"spec"`
}

// Metadata names the service on its node.
type Metadata struct {
	Name string `yaml:"name"`
}

// Spec is what to run and how to reach it.
type Spec struct {
	Runtime string            `yaml:"runtime"`
	Expose  Expose            `yaml:"expose"`
	Source  Source            `yaml:"source"`
	Ports   []Port            `yaml:"ports"`
	Mounts  []Mount           `yaml:"mounts"`
	Env     map[string]string `yaml:"env"`
	Command []string          `yaml:"command"`
	Restart string            `yaml:"restart"`
}

// Expose says how the service appears in the catalog peers see.
type Expose struct {
	Enabled     bool      `yaml:"enabled"`
	ServiceID   string    `yaml:"serviceId"`
	DisplayName string    `yaml:"displayName"`
	Transport   Transport `yaml:"transport"`
	Usage       Usage     `yaml:"usage"`
	IconURL     string    `yaml:"iconUrl"`
}

// Transport is how peers reach an exposed service; only tcp exists today.
type Transport struct {
	Kind string `yaml:"kind"`
}

// Usage tells a client what kind of thing is behind the port.
type Usage struct {
	Kind string `yaml:"kind"`
	Path string `yaml:"path"`
}

// Source is where the artifact comes from: an image for docker, a url or a
// file for wasm.
type Source struct {
	Image  string `yaml:"image"`
	URL    string `yaml:"url"`
	File   string `yaml:"file"`
	SHA256 string `yaml:"sha256"`
}

// Port is one port the service listens on.
type Port struct {
	Name        string   `yaml:"name"`
	HostPort    HostPort `yaml:"hostPort"`
	ServicePort int      `yaml:"servicePort"`
	Protocol    string   `yaml:"protocol"`
}

// HostPort is either "auto" (the node picks a free port once and keeps it)
// or a fixed port number.
type HostPort struct {
	Auto bool
	Port int
}

// String renders the host port as a manifest would spell it.
func (h HostPort) String() string {
	if h.Auto || h.Port == 0 {
		return "auto"
	}
	return strconv.Itoa(h.Port)
}

// MarshalYAML writes the manifest spelling back.
func (h HostPort) MarshalYAML() (any, error) {
	if h.Auto || h.Port == 0 {
		return "auto", nil
	}
	return h.Port, nil
}

// Mount binds a folder of the host into the service.
type Mount struct {
	HostPath    string `yaml:"hostPath"`
	RuntimePath string `yaml:"runtimePath"`
}

// Error is one problem in a manifest, at a place in its text.
type Error struct {
	Line, Column int
	Field        string
	Msg          string
}

func (e *Error) Error() string {
	where := ""
	if e.Line > 0 {
		where = fmt.Sprintf("line %d, column %d: ", e.Line, e.Column)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s%s: %s", where, e.Field, e.Msg)
	}
	return where + e.Msg
}

// Errors is every problem found in one manifest, in text order.
type Errors []*Error

func (es Errors) Error() string {
	if len(es) == 1 {
		return "invalid manifest: " + es[0].Error()
	}
	s := fmt.Sprintf("invalid manifest (%d problems):", len(es))
	for _, e := range es {
		s += "\n  " + e.Error()
	}
	return s
}
