// Package pair is fungi's pairing: the invites a node opens and their
// codes, the strangers its trust gate lets in while one is open (guests,
// in numbers and for a time both bounded), and the protocol with which a
// joiner proves it holds an invite and is trusted with its role.
package pair

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"google.golang.org/protobuf/proto"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/wire"
)

// Protocol is the one protocol a pairing guest may use: the joiner proves
// it holds an invite, and the inviter trusts it with the invite's role.
const Protocol = "/fungi/pair/1.0.0"

// Bounds of pairing. Everything a joiner or a code brings is bounded
// before it is read or allocated.
const (
	// MaxOpenInvites is how many invites may wait for their joiner at once.
	MaxOpenInvites = 16
	// MaxGuests is how many strangers may be connected as pairing guests
	// at once. As many more are let in just long enough to be told
	// pairing is busy (busyGuestWindow); beyond that a stranger is refused
	// at the handshake.
	MaxGuests = 8
	// GuestWindow is how long a guest has from its admission to redeem
	// an invite: the joiner's pairing timeout and a margin. Then its
	// connections are closed and its slot freed, even while invites stay
	// open, so strangers that connect and idle cannot keep the real
	// joiner out.
	GuestWindow = pairTimeout + 10*time.Second
	// MaxInviteCode is the longest code `device join` reads.
	MaxInviteCode = 4096
	// DefaultInviteTTL and MaxInviteTTL bound how long an invite is open.
	DefaultInviteTTL = 10 * time.Minute
	MaxInviteTTL     = 24 * time.Hour

	maxCodeAddrs     = 16
	maxCodeAddrLen   = 256
	maxPairFrame     = 512
	maxPairReply     = 4 << 10
	maxPairFailures  = 16
	maxSpentInvites  = 64
	pairTimeout      = 20 * time.Second
	refusedGrace     = 2 * time.Second
	maxBusyGuests    = MaxGuests
	busyGuestWindow  = 10 * time.Second
	inviteIDLen      = 8
	inviteSecretLen  = 32
	inviteCodePrefix = "fungi1-"
)

// GuestLimits are the resource limits of a peer the gate has not
// admitted (transport's resource manager sets them): what the pairing
// protocol needs, and no more. A few connections (a joiner may
// reach the inviter over TCP, QUIC and a relay at once), their identify
// and ping streams and the one pairing stream, and the memory of their
// windows. Such a peer holds a connection only briefly: a stranger until
// the gate closes it at the handshake (QUIC counts a connection against
// its peer before the gate sees it: go-libp2p's QUIC listener calls
// SetPeer, then InterceptSecured, so a peer scope with no room refused
// every joiner of an inviter reached over QUIC before pairing could let
// it in); a pairing guest until its window ends; a joiner between its
// proof and its trust, or refused and shut out a moment later. It keeps
// these limits all along: a yamux connection whose peer may reserve no
// memory for a new stream is torn down, and with it the pairing answer.
var GuestLimits = rcmgr.BaseLimit{
	Conns: 4, ConnsInbound: 4, FD: 4,
	Streams: 16, StreamsInbound: 12, StreamsOutbound: 8,
	Memory: 16 << 20,
}

// ErrInvite marks a code that is not an invite fungi made.
var ErrInvite = errors.New("not a fungi invite code")

type invite struct {
	id      [inviteIDLen]byte
	secret  []byte
	role    string
	alias   string
	expires time.Time
}

// Pairing holds this node's open invites and the strangers admitted to
// redeem one. The gate asks it whether a stranger may come in; the pairing
// protocol redeems an invite. Safe for concurrent use.
type Pairing struct {
	self      peer.ID
	closePeer func(peer.ID)

	mu       sync.Mutex
	invites  map[[inviteIDLen]byte]*invite
	spent    map[[inviteIDLen]byte]string // why an invite no longer opens
	guests   map[peer.ID]*guestSlot
	failures int
	// guestWindow and busyWindow are GuestWindow and busyGuestWindow,
	// shorter in tests.
	guestWindow, busyWindow time.Duration
}

// guestSlot is a stranger's place among the guests, held from its
// admission until its last connection closes, it redeems an invite, or its
// window ends.
type guestSlot struct {
	// busy marks a stranger let in past MaxGuests only to be told
	// pairing is busy.
	busy bool
	// window ends the slot and closes the stranger's connections.
	window *time.Timer
}

// NewPairing returns a pairing with no invite open: the gate admits no
// guest. closePeer closes a peer's connections (guests whose window ended,
// and all of them when the last invite closes).
func NewPairing(self peer.ID, closePeer func(peer.ID)) *Pairing {
	return &Pairing{self: self, closePeer: closePeer,
		invites: map[[inviteIDLen]byte]*invite{}, spent: map[[inviteIDLen]byte]string{}, guests: map[peer.ID]*guestSlot{},
		guestWindow: GuestWindow, busyWindow: busyGuestWindow}
}

// InviteCode is a decoded invite code: whom to reach, where, and the secret.
type InviteCode struct {
	PeerID  peer.ID
	Addrs   []ma.Multiaddr
	ID      []byte
	Secret  []byte
	Expires time.Time
}

// NewInvite opens a single-use invite for role (access or admin) that
// closes after ttl, and returns its code: this node's peer ID, addrs and
// the secret. alias names the joiner in this node's address book.
func (p *Pairing) NewInvite(role, alias string, ttl time.Duration, addrs []ma.Multiaddr) (string, time.Time, error) {
	if ttl <= 0 {
		ttl = DefaultInviteTTL
	}
	if ttl > MaxInviteTTL {
		return "", time.Time{}, fmt.Errorf("--expires %s is longer than %s; an invite is for pairing now, make a new one later", ttl, MaxInviteTTL)
	}
	inv := &invite{secret: make([]byte, inviteSecretLen), role: role, alias: alias, expires: time.Now().Add(ttl)}
	if _, err := rand.Read(inv.id[:]); err != nil {
		return "", time.Time{}, err
	}
	if _, err := rand.Read(inv.secret); err != nil {
		return "", time.Time{}, err
	}
	p.mu.Lock()
	p.pruneLocked(time.Now())
	if len(p.invites) >= MaxOpenInvites {
		p.mu.Unlock()
		return "", time.Time{}, fmt.Errorf("%d invites are open already; use one or wait until they expire", MaxOpenInvites)
	}
	p.invites[inv.id] = inv
	p.mu.Unlock()
	time.AfterFunc(ttl, p.sweep)

	pc := &messages.PairCode{PeerId: []byte(p.self), InviteId: inv.id[:], Secret: inv.secret, ExpiresUnix: inv.expires.Unix()}
	for _, a := range codeAddrs(addrs) {
		pc.Addrs = append(pc.Addrs, a.Bytes())
	}
	b, err := proto.Marshal(pc)
	if err != nil {
		return "", time.Time{}, err
	}
	return inviteCodePrefix + base64.RawURLEncoding.EncodeToString(b), inv.expires, nil
}

// codeAddrs picks the addresses a code carries: relayed ones first (they
// work across networks), then direct ones, LAN addresses included (they
// pair devices on one network), at most maxCodeAddrs. Unspecified
// addresses reach nobody and loopback ones (a circuit through a loopback
// relay too) reach only this machine, so they are left out; loopback is
// kept only when the node has nothing else, for a node that listens on
// loopback alone can be joined from this machine alone, and the code must
// still say where.
func codeAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	var relayed, direct, local []ma.Multiaddr
	for _, a := range addrs {
		switch {
		case len(a.Bytes()) > maxCodeAddrLen || manet.IsIPUnspecified(a):
			// left out
		case isLoopback(a):
			local = append(local, a)
		case wire.RelayedAddr(a):
			relayed = append(relayed, a)
		default:
			direct = append(direct, a)
		}
	}
	out := append(relayed, direct...)
	if len(out) == 0 {
		out = local
	}
	if len(out) > maxCodeAddrs {
		out = out[:maxCodeAddrs]
	}
	return out
}

// isLoopback reports whether a starts with a loopback IP (127.0.0.0/8,
// ::1) or the name localhost.
func isLoopback(a ma.Multiaddr) bool {
	if manet.IsIPLoopback(a) {
		return true
	}
	if len(a) == 0 {
		return false
	}
	switch a[0].Code() {
	case ma.P_DNS, ma.P_DNS4, ma.P_DNS6:
		name := strings.ToLower(strings.TrimSuffix(a[0].Value(), "."))
		return name == "localhost" || strings.HasSuffix(name, ".localhost")
	}
	return false
}

// DecodeInviteCode reads a code `fungi device invite` printed. It checks
// form and sizes only; whether the invite is still open only its node
// knows.
func DecodeInviteCode(code string) (*InviteCode, error) {
	code = strings.TrimSpace(code)
	if len(code) > MaxInviteCode {
		return nil, fmt.Errorf("%w: it is %d characters, a code is at most %d", ErrInvite, len(code), MaxInviteCode)
	}
	rest, ok := strings.CutPrefix(code, inviteCodePrefix)
	if !ok {
		return nil, fmt.Errorf("%w: it does not start with %q (copy the whole line `fungi device invite` printed)", ErrInvite, inviteCodePrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (was it cut or changed while copying?)", ErrInvite, err)
	}
	var pc messages.PairCode
	if err := proto.Unmarshal(b, &pc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvite, err)
	}
	id, err := peer.IDFromBytes(pc.PeerId)
	if err != nil {
		return nil, fmt.Errorf("%w: its peer ID: %v", ErrInvite, err)
	}
	if len(pc.InviteId) != inviteIDLen || len(pc.Secret) != inviteSecretLen {
		return nil, fmt.Errorf("%w: its secret has the wrong size", ErrInvite)
	}
	if len(pc.Addrs) > maxCodeAddrs {
		return nil, fmt.Errorf("%w: it carries %d addresses, at most %d", ErrInvite, len(pc.Addrs), maxCodeAddrs)
	}
	out := &InviteCode{PeerID: id, ID: pc.InviteId, Secret: pc.Secret, Expires: time.Unix(pc.ExpiresUnix, 0)}
	for _, raw := range pc.Addrs {
		a, err := ma.NewMultiaddrBytes(raw)
		if err != nil || len(raw) > maxCodeAddrLen {
			return nil, fmt.Errorf("%w: an address in it is not a multiaddr", ErrInvite)
		}
		out.Addrs = append(out.Addrs, a)
	}
	return out, nil
}

// pairProof binds the secret to both peers: a proof overheard or replayed
// by another peer proves nothing for it.
func pairProof(secret []byte, inviter, joiner peer.ID) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("fungi pair v1\x00"))
	m.Write([]byte(inviter))
	m.Write([]byte{0})
	m.Write([]byte(joiner))
	return m.Sum(nil)
}

// pruneLocked closes expired invites; the caller holds mu. A guest's slot
// ends by its own timer (slotLocked).
func (p *Pairing) pruneLocked(now time.Time) {
	for id, inv := range p.invites {
		if !now.Before(inv.expires) {
			delete(p.invites, id)
			p.spendLocked(id, "it expired at "+inv.expires.UTC().Format(time.RFC3339))
		}
	}
}

func (p *Pairing) spendLocked(id [inviteIDLen]byte, why string) {
	if len(p.spent) >= maxSpentInvites {
		for k := range p.spent {
			delete(p.spent, k)
			break
		}
	}
	p.spent[id] = why
}

// sweep prunes, and once no invite is open closes the connections of the
// guests that never paired: the window is shut.
func (p *Pairing) sweep() {
	p.mu.Lock()
	p.pruneLocked(time.Now())
	var gone []peer.ID
	if len(p.invites) == 0 {
		for g := range p.guests {
			p.dropLocked(g)
			gone = append(gone, g)
		}
		p.failures = 0
	}
	p.mu.Unlock()
	for _, g := range gone {
		p.putOut(g)
	}
}

// putOut closes the connections of a stranger whose slot ended, unless it
// is trusted by now.
func (p *Pairing) putOut(g peer.ID) {
	if p.closePeer != nil {
		go p.closePeer(g)
	}
}

// Open reports how many invites are open.
func (p *Pairing) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked(time.Now())
	return len(p.invites)
}

// AdmitGuest lets a stranger in while an invite is open: as a guest while
// fewer than MaxGuests are in, else just long enough to be told
// pairing is busy while fewer than maxBusyGuests are, else not at all. A
// stranger already in keeps its slot and its window: connecting again
// does not lengthen it.
func (p *Pairing) AdmitGuest(g peer.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked(time.Now())
	if len(p.invites) == 0 {
		return false
	}
	if _, ok := p.guests[g]; ok {
		return true
	}
	guests, busy := p.countLocked()
	switch {
	case guests < MaxGuests:
		p.guests[g] = p.slotLocked(g, false, p.guestWindow)
	case busy < maxBusyGuests:
		p.guests[g] = p.slotLocked(g, true, p.busyWindow)
	default:
		return false
	}
	return true
}

// slotLocked makes g's slot, which ends after window; the caller holds mu.
func (p *Pairing) slotLocked(g peer.ID, busy bool, window time.Duration) *guestSlot {
	slot := &guestSlot{busy: busy}
	slot.window = time.AfterFunc(window, func() { p.windowEnded(g, slot) })
	return slot
}

// windowEnded ends slot, if g still holds it, and closes g's connections.
func (p *Pairing) windowEnded(g peer.ID, slot *guestSlot) {
	p.mu.Lock()
	ended := p.guests[g] == slot
	if ended {
		delete(p.guests, g)
	}
	p.mu.Unlock()
	if ended {
		p.putOut(g)
	}
}

// countLocked counts the guests and the strangers in only to hear that
// pairing is busy; the caller holds mu.
func (p *Pairing) countLocked() (guests, busy int) {
	for _, slot := range p.guests {
		if slot.busy {
			busy++
		} else {
			guests++
		}
	}
	return guests, busy
}

// dropLocked frees g's slot; the caller holds mu.
func (p *Pairing) dropLocked(g peer.ID) {
	if slot := p.guests[g]; slot != nil {
		slot.window.Stop()
		delete(p.guests, g)
	}
}

// left frees the slot of a stranger whose last connection closed.
func (p *Pairing) left(g peer.ID) {
	p.mu.Lock()
	p.dropLocked(g)
	p.mu.Unlock()
}

// hasSlot reports whether g is in as a guest, or to hear pairing is busy.
func (p *Pairing) hasSlot(g peer.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.guests[g]
	return ok
}

// mayRedeem reports whether g may try an invite now: any peer but one let
// in only to hear pairing is busy, and that one too once a guest's slot
// is free (it takes it, with a guest's window). When g may not, guests is
// how many are pairing.
func (p *Pairing) mayRedeem(g peer.ID) (ok bool, guests int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	slot := p.guests[g]
	if slot == nil || !slot.busy {
		return true, 0
	}
	if guests, _ = p.countLocked(); guests >= MaxGuests {
		return false, guests
	}
	slot.window.Stop()
	p.guests[g] = p.slotLocked(g, false, p.guestWindow)
	return true, 0
}

// redeem checks a joiner's proof. A good one uses the invite up and
// returns its role and alias; a wrong one ends the joiner's guest status,
// and after maxPairFailures wrong proofs every invite is closed.
func (p *Pairing) redeem(joiner peer.ID, req *messages.PairRequest) (role, alias string, err error) {
	p.mu.Lock()
	defer func() {
		p.mu.Unlock()
		p.sweep()
	}()
	p.pruneLocked(time.Now())
	var id [inviteIDLen]byte
	if len(req.InviteId) != inviteIDLen {
		return "", "", errors.New("the invite code is not one of this node's; ask for a new one with `fungi device invite`")
	}
	copy(id[:], req.InviteId)
	inv := p.invites[id]
	if inv == nil {
		p.dropLocked(joiner)
		if why, ok := p.spent[id]; ok {
			return "", "", fmt.Errorf("this invite code can no longer be used: %s; ask for a new one with `fungi device invite`", why)
		}
		return "", "", errors.New("the invite code is not one of this node's open invites; ask for a new one with `fungi device invite`")
	}
	if !hmac.Equal(req.Proof, pairProof(inv.secret, p.self, joiner)) {
		p.dropLocked(joiner)
		p.failures++
		if p.failures >= maxPairFailures {
			for id := range p.invites {
				p.spendLocked(id, "it was closed after too many wrong codes")
			}
			clear(p.invites)
		}
		return "", "", errors.New("the invite code is wrong (its secret does not match); copy the whole line again, or ask for a new one with `fungi device invite`")
	}
	delete(p.invites, id)
	p.dropLocked(joiner)
	p.spendLocked(id, "it was used by "+joiner.String())
	return inv.role, inv.alias, nil
}

// Paired is called when a joiner proved an invite: it must trust the
// joiner with role (and name it alias, when set) before it returns.
type Paired func(joiner peer.ID, role, alias string) error

// Gate is the trust gate pairing works with (transport.TrustGate): it
// asks the Pairing set on it whether a stranger may come in as a guest
// (AdmitGuest), and says whom it trusts.
type Gate interface {
	Role(peer.ID) string
	Admitted(peer.ID) bool
	SetPairing(*Pairing)
}

// Serve registers the pairing protocol on h and lets gate admit guests
// while an invite of the returned Pairing is open. A guest's slot is freed
// when its last connection closes. joined, when not nil, is called on a
// goroutine of its own for each joiner once it is trusted (the node's host
// then turns a relayed connection to it direct).
func Serve(h host.Host, gate Gate, paired Paired, joined func(peer.ID)) *Pairing {
	p := NewPairing(h.ID(), func(id peer.ID) {
		if gate.Role(id) == "" && !gate.Admitted(id) {
			h.Network().ClosePeer(id)
		}
	})
	gate.SetPairing(p)
	h.Network().Notify(&network.NotifyBundle{
		// A peer may have several connections; the slot goes with the last.
		DisconnectedF: func(n network.Network, c network.Conn) {
			if len(n.ConnsToPeer(c.RemotePeer())) == 0 {
				p.left(c.RemotePeer())
			}
		},
		// A stranger's new connection can pass the gate on the slot its
		// previous one is just giving up (the gate saw the slot, then the
		// last old connection closed and freed it): such a connection
		// needs a slot of its own, or it goes.
		ConnectedF: func(_ network.Network, c network.Conn) {
			id := c.RemotePeer()
			if c.Stat().Direction != network.DirInbound || gate.Admitted(id) || p.hasSlot(id) {
				return
			}
			if !p.AdmitGuest(id) {
				p.putOut(id)
			}
		},
	})
	h.SetStreamHandler(Protocol, func(s network.Stream) {
		from := s.Conn().RemotePeer()
		s.SetDeadline(time.Now().Add(pairTimeout))
		var req messages.PairRequest
		if err := wire.ReadFrame(bufio.NewReader(s), &req, maxPairFrame); err != nil {
			s.Reset()
			return
		}
		var role, alias string
		var err error
		if ok, guests := p.mayRedeem(from); !ok {
			// The invite stays open: the same code works once a slot frees.
			err = fmt.Errorf("pairing is busy: %d other devices are pairing with this node right now; try again in a few seconds", guests)
		} else if role, alias, err = p.redeem(from, &req); err == nil {
			if err = paired(from, role, alias); err != nil {
				err = fmt.Errorf("the invite was right, but this node could not trust you: %v", err)
			}
		}
		reply := &messages.PairReply{Ok: err == nil, Role: role}
		if err != nil {
			reply.Role, reply.Error = "", err.Error()
		}
		if wire.WriteFrame(s, reply) != nil {
			s.Reset()
			return
		}
		s.Close()
		// A refused joiner is shut out once it had time to read why:
		// closing its connection at once could drop the reply in flight.
		if err != nil {
			time.AfterFunc(refusedGrace, func() { p.closePeer(from) })
			return
		}
		if joined != nil {
			go joined(from)
		}
	})
	return p
}

// Join redeems an invite on the inviter, over a connection the caller
// opened: it sends the proof and returns the role the inviter gave this
// node, or the inviter's reason for refusing.
func Join(ctx context.Context, h host.Host, code *InviteCode) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, pairTimeout)
	defer cancel()
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "fungi pair"), code.PeerID, Protocol)
	if err != nil {
		return "", fmt.Errorf("open the pairing stream: %w", explainPairReset(err))
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	req := &messages.PairRequest{InviteId: code.ID, Proof: pairProof(code.Secret, code.PeerID, h.ID())}
	if err := wire.WriteFrame(s, req); err != nil {
		s.Reset()
		return "", fmt.Errorf("send the proof: %w", explainPairReset(err))
	}
	s.CloseWrite()
	var reply messages.PairReply
	if err := wire.ReadFrame(bufio.NewReader(s), &reply, maxPairReply); err != nil {
		s.Reset()
		return "", fmt.Errorf("read the answer: %w", explainPairReset(err))
	}
	if !reply.Ok {
		return "", &wire.RemoteError{Code: "denied", Message: reply.Error}
	}
	return reply.Role, nil
}

// explainPairReset is wire.ExplainReset for the pairing stream, which the
// inviter sizes by a pairing guest's limits, not a trusted device's.
func explainPairReset(err error) error {
	if wire.IsLimitReset(err) {
		return fmt.Errorf("%w: the inviter refused the pairing stream, a device that is pairing may hold only %d streams with it at once; close other connections to it and try again: %v",
			wire.ErrStreamLimit, GuestLimits.StreamsInbound, err)
	}
	return wire.ExplainReset(err)
}
