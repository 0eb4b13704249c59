package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fungi-go/fungi/internal/atomicfile"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/messages"
)

// PeerNetwork is what the device book and peer sessions need of the libp2p
// host. Its methods are safe for concurrent use and return quickly, except
// Connect, which only sessions call, off their mailbox.
type PeerNetwork interface {
	// SetGate replaces who may connect: trusted peers with their roles,
	// and the peers this node dials.
	SetGate(roles map[peer.ID]string, dial map[peer.ID]bool)
	AddAddrs(p peer.ID, addrs []ma.Multiaddr)
	// ClosePeer closes every connection to p, and with them its streams.
	ClosePeer(p peer.ID)
	Connect(ctx context.Context, p peer.ID) error
	Connected(p peer.ID) bool
	// Ping measures one round trip and records it for connection list.
	Ping(ctx context.Context, p peer.ID) (time.Duration, error)
	// Reserve takes a slot on a relay and returns when it ends.
	Reserve(ctx context.Context, relay peer.AddrInfo) (time.Time, error)
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// Roles a trusted device can have.
const (
	RoleAccess = "access"
	RoleAdmin  = "admin"
)

// deviceRecord is one address-book entry as kept in devices.json.
type deviceRecord struct {
	PeerID  string    `json:"peerId"`
	Alias   string    `json:"alias,omitempty"`
	Addrs   []string  `json:"addrs,omitempty"`
	Role    string    `json:"role,omitempty"`
	Dial    bool      `json:"dial"`
	AddedAt time.Time `json:"addedAt"`
	// LastAddr is where this node last reached the device, and
	// LastConnected when: learned, not typed, and dialed after a restart.
	LastAddr      string    `json:"lastAddr,omitempty"`
	LastConnected time.Time `json:"lastConnected,omitempty"`
	// Seen are the addresses the device announced at its latest
	// connection: learned, so that a trusted device never added with an
	// address is dialed back after a restart (devicereach.go).
	Seen []string `json:"seen,omitempty"`
	// Failing counts the failed dials in a row on each typed or announced
	// address: those that keep failing age out (devicereach.go).
	Failing map[string]*addrFailures `json:"failing,omitempty"`
}

type deviceFile struct {
	Devices []*deviceRecord `json:"devices"`
	Current string          `json:"current,omitempty"`
}

// mdnsFound is a peer seen on the LAN.
type mdnsFound struct{ info peer.AddrInfo }

// peerDisconnected is the network saying the last connection to a peer
// closed.
type peerDisconnected struct{ id peer.ID }

type mdnsSeen struct {
	info peer.AddrInfo
	at   time.Time
}

// deviceBook owns the address book, trust and the default target peer. It
// is the only writer of the trust gate, and it keeps one peerSession for
// every device this node dials.
type deviceBook struct {
	home   *home.Home
	net    PeerNetwork
	relays []peer.AddrInfo

	file     deviceFile
	sessions map[peer.ID]*actor.PID
	seen     map[peer.ID]mdnsSeen
	// stopWatch ends the watches on the interfaces and the connections.
	stopWatch []func()
	// loadErr is why devices.json could not be read. While it is set the
	// book answers every request with it and never saves: an empty book
	// written over the user's unreadable one would lose every device and
	// its trust.
	loadErr error
}

func deviceBookProps(h *home.Home, n PeerNetwork, relays []peer.AddrInfo) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &deviceBook{home: h, net: n, relays: relays} }, supervision())
}

func (b *deviceBook) path() string { return filepath.Join(b.home.Dir, "devices.json") }

func (b *deviceBook) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Stopping, *actor.Restarting:
		for _, stop := range b.stopWatch {
			stop()
		}
		b.stopWatch = nil
	}
	if b.loadErr != nil {
		b.refuse(ctx)
		return
	}
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		b.load(ctx)
		b.watchInterfaces(ctx)
		b.watchIdentified(ctx)
	case *messages.DeviceAdd:
		b.add(ctx, msg)
	case *messages.DeviceListRequest:
		b.list(ctx)
	case *messages.DeviceRemove:
		b.remove(ctx, msg)
	case *messages.DeviceRename:
		b.rename(ctx, msg)
	case *messages.DeviceTrust:
		b.trust(ctx, msg)
	case *messages.DeviceUntrust:
		b.untrust(ctx, msg)
	case *messages.DeviceResolve:
		b.resolveRequest(ctx, msg)
	case *messages.PeerUse:
		b.use(ctx, msg)
	case *messages.PeerCurrent:
		b.current(ctx)
	case *messages.PeerClear:
		b.clear(ctx)
	case *setRelays:
		b.relays = msg.relays
		b.apply(ctx)
		ctx.Respond(true)
	case *messages.MdnsRequest:
		b.mdnsList(ctx)
	case *mdnsFound:
		b.mdnsFound(msg)
	case *peerDisconnected:
		if pid, ok := b.sessions[msg.id]; ok {
			ctx.Send(pid, msg)
		}
	case *reachedVia:
		b.reached(ctx, msg)
	case *peerConnected:
		b.connected(ctx, msg)
	case *peerIdentified:
		b.identified(ctx, msg)
	case *dialFailed:
		b.dialFailedOn(ctx, msg)
	case *addrsChanged:
		for _, pid := range b.sessions {
			ctx.Send(pid, msg)
		}
	}
}

// InterfaceWatcher is a PeerNetwork that sees this machine's network
// change (an interface, an address, the default route) sooner than libp2p
// does, and closes the connections the change left dead before it calls
// changed.
type InterfaceWatcher interface {
	WatchInterfaces(changed func()) (stop func(), err error)
}

// watchInterfaces makes a change of network (a laptop moving from one to
// another) reach the sessions at once: each dials its device again, over
// the new network, without waiting for its backoff or for libp2p to notice.
func (b *deviceBook) watchInterfaces(ctx actor.Context) {
	self, system := ctx.Self(), ctx.ActorSystem()
	if cw, ok := b.net.(interface {
		OnConnected(func(peer.ID)) (stop func())
	}); ok {
		b.stopWatch = append(b.stopWatch, cw.OnConnected(func(id peer.ID) { system.Root.Send(self, &peerConnected{id: id}) }))
	}
	w, ok := b.net.(InterfaceWatcher)
	if !ok {
		return
	}
	stop, err := w.WatchInterfaces(func() { system.Root.Send(self, &addrsChanged{}) })
	if err != nil {
		ctx.Logger().Warn("network changes are not followed; a node that moves reconnects on its timers", "err", err)
		return
	}
	b.stopWatch = append(b.stopWatch, stop)
}

// peerConnected is the network saying a connection to a peer opened.
type peerConnected struct{ id peer.ID }

// connected remembers the path of a connection to a device that opened by
// itself (a hole punch that turned a relayed one direct, the device
// dialing in): it is a path too. A trusted device that dialed in is
// remembered so as well, and dialed back from there after a restart.
func (b *deviceBook) connected(ctx actor.Context, msg *peerConnected) {
	if d := b.find(msg.id.String()); d == nil || (!d.Dial && d.Role == "") {
		return
	}
	if an, ok := b.net.(interface{ ConnAddr(peer.ID) string }); ok {
		b.reached(ctx, &reachedVia{id: msg.id, addr: an.ConnAddr(msg.id)})
	}
}

// reachedVia is a session saying its device answered on addr.
type reachedVia struct {
	id   peer.ID
	addr string
}

// lastConnectedSaveEvery bounds how often a device that stays on the same
// address rewrites the book just to say when it last worked.
const lastConnectedSaveEvery = 10 * time.Minute

// reached remembers where a device answered, so a restart dials that path;
// the address works, so its failures are forgotten, and the addresses that
// kept failing while it answered here age out.
func (b *deviceBook) reached(ctx actor.Context, msg *reachedVia) {
	d := b.find(msg.id.String())
	if d == nil || msg.addr == "" || len(msg.addr) > maxAddrLen {
		return
	}
	now := time.Now().UTC()
	changed := d.clearFailing(msg.addr)
	if d.LastAddr != msg.addr || now.Sub(d.LastConnected) >= lastConnectedSaveEvery {
		d.LastAddr, d.LastConnected = msg.addr, now
		changed = true
	}
	if b.ageOut(ctx, d, now, now) {
		changed = true
	}
	if changed {
		if err := b.save(); err != nil {
			ctx.Logger().Warn("could not remember where a device answered", "peer", d.PeerID, "err", err)
		}
	}
	b.ensureSession(ctx, d)
}

func (b *deviceBook) load(ctx actor.Context) {
	b.sessions = map[peer.ID]*actor.PID{}
	b.seen = map[peer.ID]mdnsSeen{}
	file, err := readDeviceBook(b.path())
	if err != nil {
		b.loadErr = err
		ctx.Logger().Error("the address book is unreadable; device commands are refused until it is fixed", "err", err)
		return
	}
	b.file = file
	b.apply(ctx)
}

// refuse answers every request with the reason the book could not be read,
// so no command acts on, or saves, an address book that is not the user's.
func (b *deviceBook) refuse(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *messages.DeviceAdd, *messages.DeviceListRequest, *messages.DeviceRemove, *messages.DeviceRename,
		*messages.DeviceTrust, *messages.DeviceUntrust, *messages.DeviceResolve,
		*messages.PeerUse, *messages.PeerCurrent, *messages.PeerClear, *messages.MdnsRequest:
		ctx.Respond(errorf(Failed, "%v", b.loadErr))
	}
}

// maxDeviceBookSize bounds what is read of devices.json; a book of
// thousands of devices stays far below it.
const maxDeviceBookSize = 16 << 20

// readDeviceBook reads an address book. A missing file is an empty book;
// any other failure is an error that names the file and what to do.
func readDeviceBook(path string) (deviceFile, error) {
	var file deviceFile
	fix := "fungi leaves it untouched; fix it, or move it aside to start with an empty address book, then start the daemon again"
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return file, nil
	}
	if err != nil {
		return file, fmt.Errorf("the address book %s cannot be read: %w; make it readable by the user running the daemon (%s)", path, err, fix)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDeviceBookSize+1))
	if err != nil {
		return file, fmt.Errorf("the address book %s cannot be read: %w; %s", path, err, fix)
	}
	if len(data) > maxDeviceBookSize {
		return file, fmt.Errorf("the address book %s is larger than %d MiB, so it is not an address book fungi wrote; %s", path, maxDeviceBookSize>>20, fix)
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return file, fmt.Errorf("the address book %s is not valid JSON (%v); %s", path, err, fix)
	}
	return file, nil
}

// CheckDeviceBook reports why the home's address book (devices.json)
// cannot be read, or nil when it can or does not exist yet. The daemon
// calls it before it starts, so an unreadable book stops the daemon with
// this message instead of leaving a node that refuses every device command.
func CheckDeviceBook(h *home.Home) error {
	_, err := readDeviceBook(filepath.Join(h.Dir, "devices.json"))
	return err
}

func (b *deviceBook) save() error {
	if b.loadErr != nil {
		return b.loadErr
	}
	data, err := json.MarshalIndent(&b.file, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(b.path(), data, 0o600)
}

// apply pushes the book to the network: the gate, known addresses, and a
// session for every device to dial or to dial back (wantsSession).
func (b *deviceBook) apply(ctx actor.Context) {
	if b.net == nil {
		return
	}
	roles := map[peer.ID]string{}
	dial := map[peer.ID]bool{}
	sessions := map[peer.ID]bool{}
	for _, d := range b.file.Devices {
		id, err := peer.Decode(d.PeerID)
		if err != nil {
			continue
		}
		if d.Role != "" {
			roles[id] = d.Role
		}
		if d.Dial {
			dial[id] = true
		}
		if wantsSession(d) {
			sessions[id] = true
		}
		b.net.AddAddrs(id, parseAddrs(append(append([]string{d.LastAddr}, d.Addrs...), d.Seen...)))
	}
	// The configured relays are dialed too; they get no role, and no
	// session: the relay keeper holds those connections.
	gateDial := maps.Clone(dial)
	for _, r := range b.relays {
		b.net.AddAddrs(r.ID, r.Addrs)
		gateDial[r.ID] = true
	}
	b.net.SetGate(roles, gateDial)
	for id, pid := range b.sessions {
		if !sessions[id] {
			ctx.Stop(pid)
			delete(b.sessions, id)
		}
	}
	for id := range sessions {
		if _, ok := b.sessions[id]; !ok {
			b.sessions[id] = ctx.Spawn(peerSessionProps(id, b.net))
		}
	}
}

func parseAddrs(addrs []string) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			continue
		}
		// A /p2p/<id> suffix names the peer, not a place to dial.
		if transport, _ := peer.SplitAddr(m); transport != nil {
			m = transport
		}
		out = append(out, m)
	}
	return out
}

// find returns the device that name is the alias or peer ID of.
func (b *deviceBook) find(name string) *deviceRecord {
	for _, d := range b.file.Devices {
		if d.Alias == name && name != "" {
			return d
		}
	}
	for _, d := range b.file.Devices {
		if d.PeerID == name {
			return d
		}
	}
	return nil
}

func (b *deviceBook) describe(d *deviceRecord) *messages.Device {
	out := &messages.Device{
		PeerId:  d.PeerID,
		Alias:   d.Alias,
		Addrs:   append([]string{}, d.Addrs...),
		Role:    d.Role,
		AddedAt: d.AddedAt.UTC().Format(time.RFC3339),
		Current: b.file.Current == d.PeerID,
	}
	if d.LastAddr != "" {
		out.LastAddr = d.LastAddr
		out.LastConnected = d.LastConnected.UTC().Format(time.RFC3339)
	}
	if id, err := peer.Decode(d.PeerID); err == nil && b.net != nil {
		out.Connected = b.net.Connected(id)
	}
	return out
}

func unknownDevice(name string) *Error {
	return errorf(NotFound, "no device %q in the address book; add it with `fungi device add PEER_ID --alias NAME` (see `fungi device list`)", name)
}

func (b *deviceBook) add(ctx actor.Context, msg *messages.DeviceAdd) {
	id, err := peer.Decode(msg.PeerId)
	if err != nil {
		ctx.Respond(errorf(Invalid, "%q is not a peer ID (they look like 12D3KooW…; the other node prints its own with `fungi info id`)", msg.PeerId))
		return
	}
	if msg.Alias != "" {
		if err := checkAlias(msg.Alias); err != nil {
			ctx.Respond(err)
			return
		}
		if other := b.find(msg.Alias); other != nil && other.PeerID != id.String() {
			ctx.Respond(errorf(Conflict, "the alias %q already names %s; pick another or `fungi device rename` that one", msg.Alias, other.PeerID))
			return
		}
	}
	for _, a := range msg.Addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			ctx.Respond(errorf(Invalid, "--addr %q is not a multiaddr (e.g. /ip4/192.168.1.20/tcp/4433): %v", a, err))
			return
		}
		if _, pid := peer.SplitAddr(m); pid != "" && pid != id {
			ctx.Respond(errorf(Invalid, "--addr %q belongs to peer %s, not %s", a, pid, id))
			return
		}
	}
	d := b.find(id.String())
	if d == nil {
		d = &deviceRecord{PeerID: id.String(), AddedAt: time.Now().UTC()}
		b.file.Devices = append(b.file.Devices, d)
	}
	if msg.Alias != "" {
		d.Alias = msg.Alias
	}
	d.Addrs = mergeStrings(d.Addrs, msg.Addrs)
	for _, a := range msg.Addrs {
		d.clearFailing(a) // typed again: the owner says it is right
	}
	d.Dial = true
	b.commit(ctx, d)
}

func checkAlias(alias string) *Error {
	if !nameRE.MatchString(alias) || len(alias) > 63 {
		return errorf(Invalid, "alias %q: use lower-case letters, digits and hyphens (at most 63)", alias)
	}
	if _, err := peer.Decode(alias); err == nil {
		return errorf(Invalid, "alias %q looks like a peer ID; pick a name", alias)
	}
	return nil
}

func mergeStrings(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// commit saves the book, applies it to the network and answers with d.
func (b *deviceBook) commit(ctx actor.Context, d *deviceRecord) {
	if err := b.save(); err != nil {
		ctx.Respond(errorf(Failed, "save the address book: %v", err))
		return
	}
	b.apply(ctx)
	ctx.Respond(b.describe(d))
}

func (b *deviceBook) list(ctx actor.Context) {
	out := &messages.DeviceList{}
	for _, d := range b.file.Devices {
		out.Devices = append(out.Devices, b.describe(d))
	}
	sort.Slice(out.Devices, func(i, j int) bool {
		return out.Devices[i].Alias+out.Devices[i].PeerId < out.Devices[j].Alias+out.Devices[j].PeerId
	})
	ctx.Respond(out)
}

func (b *deviceBook) remove(ctx actor.Context, msg *messages.DeviceRemove) {
	d := b.find(msg.Device)
	if d == nil {
		ctx.Respond(unknownDevice(msg.Device))
		return
	}
	for i, x := range b.file.Devices {
		if x == d {
			b.file.Devices = append(b.file.Devices[:i], b.file.Devices[i+1:]...)
			break
		}
	}
	if b.file.Current == d.PeerID {
		b.file.Current = ""
	}
	b.commit(ctx, d) // the gate first, so a redial is refused
	b.disconnect(d)
}

// disconnect closes the device's connections. Closing waits on the
// network, so it runs off the mailbox; the gate was updated before, so
// nothing reconnects in between.
func (b *deviceBook) disconnect(d *deviceRecord) {
	if id, err := peer.Decode(d.PeerID); err == nil && b.net != nil {
		go b.net.ClosePeer(id)
	}
}

func (b *deviceBook) rename(ctx actor.Context, msg *messages.DeviceRename) {
	d := b.find(msg.Device)
	if d == nil {
		ctx.Respond(unknownDevice(msg.Device))
		return
	}
	if err := checkAlias(msg.Alias); err != nil {
		ctx.Respond(err)
		return
	}
	if other := b.find(msg.Alias); other != nil && other != d {
		ctx.Respond(errorf(Conflict, "the alias %q already names %s", msg.Alias, other.PeerID))
		return
	}
	d.Alias = msg.Alias
	b.commit(ctx, d)
}

// trust lets a device in with a role. A peer ID not yet in the book is
// added (without dialing it: it is the one that will connect).
func (b *deviceBook) trust(ctx actor.Context, msg *messages.DeviceTrust) {
	role := msg.Role
	if role == "" {
		role = RoleAccess
	}
	if role != RoleAccess && role != RoleAdmin {
		ctx.Respond(errorf(Invalid, "role %q: use access (catalog and access) or admin (also administer services)", role))
		return
	}
	d := b.find(msg.Device)
	if d == nil {
		id, err := peer.Decode(msg.Device)
		if err != nil {
			ctx.Respond(unknownDevice(msg.Device))
			return
		}
		d = &deviceRecord{PeerID: id.String(), AddedAt: time.Now().UTC()}
		b.file.Devices = append(b.file.Devices, d)
	}
	d.Role = role
	b.rememberAnnounced(ctx, d)
	b.commit(ctx, d)
}

// untrust takes the role away and closes the device's connections at once,
// cutting any access stream it had open.
func (b *deviceBook) untrust(ctx actor.Context, msg *messages.DeviceUntrust) {
	d := b.find(msg.Device)
	if d == nil {
		ctx.Respond(unknownDevice(msg.Device))
		return
	}
	d.Role = ""
	if err := b.save(); err != nil {
		ctx.Respond(errorf(Failed, "save the address book: %v", err))
		return
	}
	b.apply(ctx) // the gate first, so a redial is refused
	b.disconnect(d)
	ctx.Respond(b.describe(d))
}

func (b *deviceBook) resolveRequest(ctx actor.Context, msg *messages.DeviceResolve) {
	name := msg.Device
	if name == "" {
		if b.file.Current == "" {
			ctx.Respond(errorf(Invalid, "no target peer: pass --peer DEVICE, or set a default with `fungi peer use DEVICE`"))
			return
		}
		name = b.file.Current
	}
	d := b.find(name)
	if d == nil {
		ctx.Respond(unknownDevice(name))
		return
	}
	ctx.Respond(b.describe(d))
}

func (b *deviceBook) use(ctx actor.Context, msg *messages.PeerUse) {
	d := b.find(msg.Device)
	if d == nil {
		ctx.Respond(unknownDevice(msg.Device))
		return
	}
	b.file.Current = d.PeerID
	b.commit(ctx, d)
}

func (b *deviceBook) current(ctx actor.Context) {
	d := b.find(b.file.Current)
	if b.file.Current == "" || d == nil {
		ctx.Respond(errorf(NotFound, "no current peer; set one with `fungi peer use DEVICE`"))
		return
	}
	ctx.Respond(b.describe(d))
}

func (b *deviceBook) clear(ctx actor.Context) {
	d := b.find(b.file.Current)
	b.file.Current = ""
	if err := b.save(); err != nil {
		ctx.Respond(errorf(Failed, "save the address book: %v", err))
		return
	}
	if d == nil {
		ctx.Respond(&messages.Device{})
		return
	}
	ctx.Respond(b.describe(d))
}

func (b *deviceBook) mdnsFound(msg *mdnsFound) {
	b.seen[msg.info.ID] = mdnsSeen{info: msg.info, at: time.Now()}
	if b.net != nil && b.find(msg.info.ID.String()) != nil {
		b.net.AddAddrs(msg.info.ID, msg.info.Addrs)
	}
}

func (b *deviceBook) mdnsList(ctx actor.Context) {
	out := &messages.MdnsPeers{}
	for id, s := range b.seen {
		p := &messages.MdnsPeer{PeerId: id.String(), LastSeen: s.at.UTC().Format(time.RFC3339)}
		for _, a := range s.info.Addrs {
			p.Addrs = append(p.Addrs, a.String())
		}
		if d := b.find(id.String()); d != nil {
			p.Alias = d.Alias
		}
		out.Peers = append(out.Peers, p)
	}
	sort.Slice(out.Peers, func(i, j int) bool { return out.Peers[i].PeerId < out.Peers[j].PeerId })
	ctx.Respond(out)
}
