// Package manifest is the service manifest of Fungi (apiVersion
// fungi.dev/v1alpha1, kind ServiceManifest): its model, strict decoding with
// line and column in every error, and the rules a manifest must meet before a
// node accepts it.
package manifest

import (
	"fmt"
	"strconv"
	"strings"
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
	// RuntimeExternal publishes a TCP service that already runs (sshd, a
	// NAS page): fungi starts nothing, it probes the target and serves it
	// through catalog and access.
	RuntimeExternal = "external"
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
	// Stdin is a file in the service's data folder that a wasm job reads
	// as its standard input, named relative to that folder (or as
	// ${APP_HOME}/name); empty means no input.
	Stdin string `yaml:"stdin"`
	// AllowOutboundHTTP is where a wasm component may send HTTP requests
	// (wasi:http/outgoing-handler): nowhere (the default), the public
	// internet (true) or the hosts, addresses and networks it lists. A
	// request it does not allow is answered with an error, so a guest
	// reaches no network by default.
	AllowOutboundHTTP OutboundHTTP `yaml:"allowOutboundHttp"`
	// Network is what a wasm component may connect to over wasi:sockets.
	Network Network `yaml:"network"`
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
// file for wasm; for an external service, the host that already serves it.
type Source struct {
	Image  string `yaml:"image"`
	URL    string `yaml:"url"`
	File   string `yaml:"file"`
	SHA256 string `yaml:"sha256"`
	// Host is an external service's target host (default 127.0.0.1);
	// other hosts than loopback need the node's external.allowedHosts.
	Host string `yaml:"host"`
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
	// ReadOnly lets the service read the folder but change nothing in it.
	ReadOnly bool `yaml:"readOnly"`
}

// Error is one problem in a manifest, at a place in its text.
type Error struct {
	Line, Column int
	Field        string
	Msg          string

	// omitted is set on the last entry of an Errors that lists only the
	// first MaxReportedErrors problems: how many more there are.
	omitted int
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

// Errors is the problems found in one manifest, in text order. At most
// MaxReportedErrors are listed; a last entry then counts the rest.
type Errors []*Error

func (es Errors) Error() string {
	if len(es) == 1 {
		return "invalid manifest: " + es[0].Error()
	}
	total := len(es)
	if last := es[len(es)-1]; last.omitted > 0 {
		total += last.omitted - 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid manifest (%d problems):", total)
	for _, e := range es {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return b.String()
}
