// Package runtimes defines what a runtime provider is: the part of a node
// that fetches a service's artifact and runs it. The docker and wasm
// subpackages implement it; the manifest subpackage is the model they share.
package runtimes

import (
	"context"
	"io"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// Provider runs the services of one manifest runtime. Its methods may block
// (downloads, pulls, compiles) and are called off any actor's mailbox; an
// implementation must be safe for concurrent use.
type Provider interface {
	// Runtime is the manifest runtime name the provider serves.
	Runtime() string
	// Capability describes the provider to `info runtimes` and to peers.
	Capability(ctx context.Context) *messages.RuntimeCapability
	// Fetch brings the artifact of a service to the node and verifies it.
	Fetch(ctx context.Context, req FetchRequest, progress func(*messages.PullProgress)) (Artifact, error)
	// Start runs a service and returns once it serves on its host ports.
	Start(ctx context.Context, spec InstanceSpec) (Instance, error)
	// Remove deletes what the runtime keeps of a removed service (a
	// container); the service's data folder is not touched.
	Remove(ctx context.Context, service string) error
}

// FetchRequest is what a provider needs to fetch an artifact.
type FetchRequest struct {
	Manifest *manifest.Manifest
	// ManifestDir resolves a relative source.file; set only for manifests
	// that came from this machine's own CLI.
	ManifestDir string
	// Shipped is the artifact sent along with a manifest; when set it is
	// used instead of reading source.file.
	Shipped []byte
}

// Artifact is a fetched, verified artifact.
type Artifact struct {
	// Ref locates it: a file path for wasm, an image reference for docker.
	Ref    string
	SHA256 string
}

// PortBinding is a manifest port with the host port the node chose for it.
type PortBinding struct {
	Name        string
	ServicePort int
	HostPort    int
}

// InstanceSpec is everything a provider needs to run one service.
type InstanceSpec struct {
	Name     string
	Manifest *manifest.Manifest
	Artifact Artifact
	Ports    []PortBinding
	Mounts   []manifest.ResolvedMount
	// DataDir is the service's data folder (${APP_HOME}), where a wasm
	// job's spec.stdin file lives.
	DataDir string
	// Log receives the service's own output; it is safe for concurrent use.
	Log io.Writer
	// Beside says the service's current instance runs on until this one
	// serves (an update in place, on host ports of its own): the provider
	// must leave it alone, so docker makes a second container.
	Beside bool
}

// Instance is a running service.
type Instance interface {
	// Stop ends the service, gracefully until ctx is done.
	Stop(ctx context.Context) error
	// Done is closed when the service has ended, by Stop or by itself.
	Done() <-chan struct{}
	// Err is why the service ended, nil after a clean Stop; valid after Done.
	// An error with an ExitCode() int method carries the process's code.
	Err() error
}
