package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/atomicfile"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
)

// AccessDialer opens an access stream to a peer's service.
type AccessDialer func(ctx context.Context, p peer.ID, hdr *messages.AccessHeader) (access.HalfCloser, error)

// AttachAccess asks the access manager for a local entry for a service a
// peer publishes; the caller has checked the service in the peer's
// catalog. The answer is a *messages.AccessEntry or an *Error.
type AttachAccess struct {
	PeerID string
	// Alias is the device's alias when attached, for the pages that name it.
	Alias     string
	Entry     *messages.CatalogEntry
	LocalPort int
	// Port names the one port of a multi-port service to attach; empty:
	// all of them.
	Port string
}

type accessPortRecord struct {
	Name      string `json:"name"`
	LocalPort int    `json:"localPort"`
}

// accessRecord is one access entry as kept in access.json; its local ports
// stay the same across restarts of either node.
type accessRecord struct {
	PeerID    string             `json:"peerId"`
	ServiceID string             `json:"serviceId"`
	Usage     string             `json:"usage,omitempty"`
	Path      string             `json:"path,omitempty"`
	Ports     []accessPortRecord `json:"ports"`
	CreatedAt time.Time          `json:"createdAt"`
	// Alias is the device's alias at attach time, so a refusal page names
	// the node as its owner knows it (with its peer ID, which never goes
	// stale).
	Alias string `json:"alias,omitempty"`
	// Reserved says the entry was detached with --keep-port: nothing
	// listens, and its local ports wait for the next attach.
	Reserved bool `json:"reserved,omitempty"`
}

func (r *accessRecord) key() string { return r.PeerID + "/" + r.ServiceID }

func (r *accessRecord) describe() *messages.AccessEntry {
	e := &messages.AccessEntry{PeerId: r.PeerID, ServiceId: r.ServiceID, Usage: r.Usage, Path: r.Path}
	for _, p := range r.Ports {
		e.Ports = append(e.Ports, &messages.AccessPort{Name: p.Name, LocalAddress: "127.0.0.1:" + strconv.Itoa(p.LocalPort)})
	}
	return e
}

// accessManager owns the access entries and one accessForwarder per entry.
type accessManager struct {
	home   *home.Home
	dial   AccessDialer
	logger *slog.Logger

	entries    []*accessRecord
	forwarders map[string]*actor.PID
	// broken is why access.json could not be loaded; while set, nothing
	// is saved over it.
	broken error
}

func accessManagerProps(h *home.Home, dial AccessDialer, logger *slog.Logger) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &accessManager{home: h, dial: dial, logger: logger} }, supervision())
}

func (m *accessManager) path() string { return filepath.Join(m.home.Dir, "access.json") }

func (m *accessManager) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		m.load(ctx)
	case *AttachAccess, *messages.AccessDetach:
		if m.broken != nil {
			ctx.Respond(errorf(Failed, "%v", m.broken))
			return
		}
	}
	switch msg := ctx.Message().(type) {
	case *AttachAccess:
		m.attach(ctx, msg)
	case *messages.AccessListRequest:
		m.list(ctx, msg)
	case *messages.AccessDetach:
		m.detach(ctx, msg)
	}
}

func (m *accessManager) load(ctx actor.Context) {
	m.forwarders = map[string]*actor.PID{}
	entries, err := readAccessBook(m.path())
	if err != nil {
		// Starting empty would let the next attach overwrite the entries
		// the file still holds: keep the file, refuse every change.
		m.broken = err
		m.logger.Error("access entries are unavailable", "err", err)
		return
	}
	m.entries = entries
	for _, r := range m.entries {
		if r.Reserved {
			continue
		}
		lns, err := listenAll(r)
		if err != nil {
			m.logger.Error("access entry cannot listen; detach and attach it again with another --local-port", "service", r.ServiceID, "err", err)
			continue
		}
		m.spawn(ctx, r, lns)
	}
}

// CheckAccessBook reads the home's access.json the way the access manager
// will, so a daemon refuses to start on a file it cannot read rather than
// run without the entries it holds. A missing file is an empty book.
func CheckAccessBook(h *home.Home) error {
	_, err := readAccessBook(filepath.Join(h.Dir, "access.json"))
	return err
}

func readAccessBook(path string) ([]*accessRecord, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the access entries in %s: %v; fix the file's permissions or move it aside, then start again", path, err)
	}
	var entries []*accessRecord
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("the access entries in %s are not valid JSON: %v; repair the file or move it aside (its entries are then lost), then start again", path, err)
	}
	return entries, nil
}

func (m *accessManager) save() error {
	data, err := json.MarshalIndent(m.entries, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(m.path(), data, 0o600)
}

func (m *accessManager) spawn(ctx actor.Context, r *accessRecord, lns []net.Listener) {
	id, err := peer.Decode(r.PeerID)
	if err != nil {
		return
	}
	m.forwarders[r.key()] = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &accessForwarder{peer: id, rec: r, listeners: lns, dial: m.dial, logger: m.logger}
	}))
}

// localPortError says why an access entry's local port could not be
// opened, by the cause the system gave: a port in use and a port this user
// may not open need different fixes.
func localPortError(port int, name string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("local port %d for %s is in use by another program (%v); pick another with --local-port", port, name, err)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("local port %d for %s needs privileges this daemon lacks (%v); ports below 1024 usually do: pick one of 1024 or above with --local-port", port, name, err)
	}
	return fmt.Errorf("local port %d for %s cannot be opened (%v); pick another with --local-port", port, name, err)
}

// listenAll listens on every local port of r, all or nothing.
func listenAll(r *accessRecord) ([]net.Listener, error) {
	var lns []net.Listener
	for i := range r.Ports {
		ln, err := access.ListenLocal(net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Ports[i].LocalPort)))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, localPortError(r.Ports[i].LocalPort, r.Ports[i].Name, err)
		}
		r.Ports[i].LocalPort = ln.Addr().(*net.TCPAddr).Port
		lns = append(lns, ln)
	}
	return lns, nil
}

func (m *accessManager) find(peerID, serviceID string) *accessRecord {
	for _, r := range m.entries {
		if r.PeerID == peerID && r.ServiceID == serviceID {
			return r
		}
	}
	return nil
}

// attach is idempotent: attaching an attached service answers with the
// entry it has, so scripts can attach before every use.
func (m *accessManager) attach(ctx actor.Context, msg *AttachAccess) {
	ports, err := attachPorts(msg)
	if err != nil {
		ctx.Respond(err)
		return
	}
	if r := m.find(msg.PeerID, msg.Entry.ServiceId); r != nil && r.Reserved {
		m.attachReserved(ctx, msg, r, ports)
		return
	} else if r != nil {
		if !r.hasPorts(ports) {
			ctx.Respond(errorf(Conflict, "%s is attached with port(s) %s; `fungi access detach %s --keep-port`, then attach again with the ports you want", r.ServiceID, r.portNames(), r.ServiceID))
			return
		}
		if msg.LocalPort == 0 || r.Ports[0].LocalPort == msg.LocalPort {
			ctx.Respond(r.describe())
			return
		}
		ctx.Respond(errorf(Conflict, "%s is already attached on 127.0.0.1:%d; `fungi access detach %s` first to move it", r.ServiceID, r.Ports[0].LocalPort, r.ServiceID))
		return
	}
	r := &accessRecord{PeerID: msg.PeerID, ServiceID: msg.Entry.ServiceId, Usage: msg.Entry.Usage, Path: msg.Entry.Path, CreatedAt: time.Now().UTC(), Alias: msg.Alias}
	for i, p := range ports {
		port := 0
		if i == 0 {
			port = msg.LocalPort
		}
		r.Ports = append(r.Ports, accessPortRecord{Name: p.Name, LocalPort: port})
	}
	lns, err := listenAll(r)
	if err != nil {
		ctx.Respond(errorf(Conflict, "%v", err))
		return
	}
	m.entries = append(m.entries, r)
	if err := m.save(); err != nil {
		for _, l := range lns {
			l.Close()
		}
		m.entries = m.entries[:len(m.entries)-1]
		ctx.Respond(errorf(Failed, "save access entries: %v", err))
		return
	}
	m.spawn(ctx, r, lns)
	ctx.Respond(r.describe())
}

func (m *accessManager) list(ctx actor.Context, msg *messages.AccessListRequest) {
	out := &messages.AccessEntries{Entries: []*messages.AccessEntry{}}
	for _, r := range m.entries {
		if !r.Reserved && (msg.Device == "" || msg.Device == r.PeerID) {
			out.Entries = append(out.Entries, r.describe())
		}
	}
	sort.Slice(out.Entries, func(i, j int) bool { return out.Entries[i].ServiceId < out.Entries[j].ServiceId })
	ctx.Respond(out)
}

func (m *accessManager) detach(ctx actor.Context, msg *messages.AccessDetach) {
	var match *accessRecord
	for _, r := range m.entries {
		if r.ServiceID == msg.ServiceId && (msg.Device == "" || msg.Device == r.PeerID) {
			if match != nil {
				ctx.Respond(errorf(Invalid, "%s is attached from more than one peer; name one with --peer", msg.ServiceId))
				return
			}
			match = r
		}
	}
	if match == nil {
		ctx.Respond(errorf(NotFound, "%s is not attached (see `fungi access list`)", msg.ServiceId))
		return
	}
	if msg.KeepPort {
		m.reserve(ctx, match)
		return
	}
	for i, r := range m.entries {
		if r == match {
			m.entries = append(m.entries[:i], m.entries[i+1:]...)
			break
		}
	}
	if err := m.save(); err != nil {
		ctx.Respond(errorf(Failed, "save access entries: %v", err))
		return
	}
	if pid, ok := m.forwarders[match.key()]; ok {
		ctx.Stop(pid)
		delete(m.forwarders, match.key())
	}
	ctx.Respond(match.describe())
}
