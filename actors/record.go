package actors

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fungi-go/fungi/internal/atomicfile"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/external"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// Desired states a service record keeps across daemon restarts.
const (
	desiredRunning = "running"
	desiredStopped = "stopped"
)

// Lifecycle states of a service actor.
const (
	stateStarting = "starting"
	stateRunning  = "running"
	stateStopping = "stopping"
	stateStopped  = "stopped"
	stateFailed   = "failed"
)

// serviceRecord is what a node keeps of a service besides its manifest, in
// services/<name>/state.json.
type serviceRecord struct {
	Name         string                 `json:"name"`
	Runtime      string                 `json:"runtime"`
	Artifact     runtimes.Artifact      `json:"artifact"`
	Ports        []runtimes.PortBinding `json:"ports"`
	DesiredState string                 `json:"desiredState"`
	Restarts     uint32                 `json:"restarts"`
	LastError    string                 `json:"lastError,omitempty"`
	// ExitCode is the last run's exit code, kept with LastError until
	// the next start by hand, across stops and daemon restarts.
	ExitCode int32     `json:"exitCode,omitempty"`
	PulledAt time.Time `json:"pulledAt"`
	// Shipped says source.file came with the pull from a peer: the
	// manifest's path names a file on that peer, not on this node.
	Shipped bool `json:"shipped,omitempty"`
}

const (
	manifestFile = "manifest.yaml"
	stateFile    = "state.json"
)

func saveRecord(h *home.Home, rec *serviceRecord) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(h.ServiceDir(rec.Name), stateFile), data, 0o600)
}

func saveManifest(h *home.Home, name string, yaml []byte) error {
	return atomicfile.Write(filepath.Join(h.ServiceDir(name), manifestFile), yaml, 0o600)
}

// The largest state.json and manifest.yaml a node reads back. Both are
// written by fungi and are a few KiB; a file larger than this was not.
const (
	maxRecordBytes   = 1 << 20
	maxManifestBytes = 1 << 20
)

func loadService(h *home.Home, name string) (*serviceRecord, *manifest.Manifest, error) {
	rec, err := loadRecord(h, name)
	if err != nil {
		return nil, nil, err
	}
	m, err := loadManifest(h, name)
	if err != nil {
		return nil, nil, err
	}
	return rec, m, nil
}

// loadRecord reads services/<name>/state.json. A record that does not name
// the service of its folder is refused: it is not that service's record.
func loadRecord(h *home.Home, name string) (*serviceRecord, error) {
	path := filepath.Join(h.ServiceDir(name), stateFile)
	data, err := readBounded(path, maxRecordBytes)
	if err != nil {
		return nil, err
	}
	var rec serviceRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if rec.Name != name {
		return nil, fmt.Errorf("%s: the record names service %q, not %q", path, rec.Name, name)
	}
	return &rec, nil
}

// loadManifest reads and strictly decodes services/<name>/manifest.yaml;
// its errors carry the line and column.
func loadManifest(h *home.Home, name string) (*manifest.Manifest, error) {
	path := filepath.Join(h.ServiceDir(name), manifestFile)
	raw, err := readBounded(path, maxManifestBytes)
	if err != nil {
		return nil, err
	}
	m, err := manifest.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// readBounded reads a whole file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes, more than fungi ever writes there", path, limit)
	}
	return data, nil
}

// describe is the ServiceInfo of a service in a given state.
func describe(h *home.Home, rec *serviceRecord, m *manifest.Manifest, state string) *messages.ServiceInfo {
	info := &messages.ServiceInfo{
		Name:           rec.Name,
		Runtime:        rec.Runtime,
		State:          state,
		DesiredState:   rec.DesiredState,
		Source:         sourceText(m, rec),
		Restarts:       rec.Restarts,
		LastError:      rec.LastError,
		DataDir:        h.DataDir(rec.Name),
		RestartPolicy:  m.Spec.Restart,
		ArtifactSha256: rec.Artifact.SHA256,
	}
	if rec.Runtime == manifest.RuntimeExternal {
		// An external service is a program already running elsewhere: it
		// has no data folder here.
		info.DataDir = ""
	}
	for i, p := range rec.Ports {
		proto := "tcp"
		if i < len(m.Spec.Ports) {
			proto = m.Spec.Ports[i].Protocol
		}
		info.Ports = append(info.Ports, &messages.PortBinding{
			Name:        p.Name,
			ServicePort: uint32(p.ServicePort),
			HostPort:    uint32(p.HostPort),
			Protocol:    proto,
			HostAddress: hostAddress(m, p),
		})
	}
	for _, mt := range m.Spec.Mounts {
		info.Mounts = append(info.Mounts, &messages.MountBinding{HostPath: expandAppHome(h, rec.Name, mt.HostPath), RuntimePath: mt.RuntimePath})
	}
	e := m.Spec.Expose
	info.Expose = &messages.Expose{
		Enabled:     e.Enabled,
		ServiceId:   e.ServiceID,
		DisplayName: e.DisplayName,
		Transport:   e.Transport.Kind,
		Usage:       e.Usage.Kind,
		Path:        e.Usage.Path,
		IconUrl:     e.IconURL,
	}
	return info
}

// hostAddress is where the node reaches a service's port: its host port on
// loopback, or for an external service the target it publishes, which
// may be another host of the LAN (source.host).
func hostAddress(m *manifest.Manifest, p runtimes.PortBinding) string {
	if m.Spec.Runtime == manifest.RuntimeExternal {
		return net.JoinHostPort(external.Host(m), strconv.Itoa(p.ServicePort))
	}
	return fmt.Sprintf("127.0.0.1:%d", p.HostPort)
}

func expandAppHome(h *home.Home, name, p string) string {
	if rel, ok := strings.CutPrefix(p, manifest.AppHomeVar); ok {
		return filepath.Join(h.DataDir(name), filepath.FromSlash(rel))
	}
	return p
}

func sourceText(m *manifest.Manifest, rec *serviceRecord) string {
	s := m.Spec.Source
	switch {
	case m.Spec.Runtime == manifest.RuntimeExternal:
		return "the service already running at " + external.Host(m)
	case rec.Shipped && s.File != "":
		sum := rec.Artifact.SHA256
		if len(sum) > 12 {
			sum = sum[:12]
		}
		return fmt.Sprintf("%s (shipped with the pull, sha256 %s)", path.Base(filepath.ToSlash(s.File)), sum)
	case s.Image != "":
		return s.Image
	case s.URL != "":
		return s.URL
	default:
		return s.File
	}
}
