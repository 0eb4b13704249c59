package transport

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
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/fungi-go/fungi/messages"
)

// PairProtocol is the one protocol a pairing guest may use: the joiner
// proves it holds an invite, and the inviter trusts it with the invite's
// role.
const PairProtocol = "/fungi/pair/1.0.0"

// Bounds of pairing. Everything a joiner or a code brings is bounded
// before it is read or allocated.
const (
	// MaxOpenInvites is how many invites may wait for their joiner at once.
	MaxOpenInvites = 16
	// MaxPairGuests is how many strangers may be connected as pairing
	// guests at once; more are refused at the handshake.
	MaxPairGuests = 8
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
	inviteIDLen      = 8
	inviteSecretLen  = 32
	inviteCodePrefix = "fungi1-"
)

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
	guests   map[peer.ID]time.Time        // admitted until
	failures int
}

// NewPairing returns a pairing with no invite open: the gate admits no
// guest. closePeer closes a peer's connections (guests left when the last
// invite closes).
func NewPairing(self peer.ID, closePeer func(peer.ID)) *Pairing {
	return &Pairing{self: self, closePeer: closePeer,
		invites: map[[inviteIDLen]byte]*invite{}, spent: map[[inviteIDLen]byte]string{}, guests: map[peer.ID]time.Time{}}
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
// work across networks), at most maxCodeAddrs.
func codeAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	var relayed, direct []ma.Multiaddr
	for _, a := range addrs {
		if len(a.Bytes()) > maxCodeAddrLen {
			continue
		}
		if isRelayed(a) {
			relayed = append(relayed, a)
		} else {
			direct = append(direct, a)
		}
	}
	out := append(relayed, direct...)
	if len(out) > maxCodeAddrs {
		out = out[:maxCodeAddrs]
	}
	return out
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

// pruneLocked closes expired invites and ends guests whose window passed;
// the caller holds mu.
func (p *Pairing) pruneLocked(now time.Time) {
	for id, inv := range p.invites {
		if !now.Before(inv.expires) {
			delete(p.invites, id)
			p.spendLocked(id, "it expired at "+inv.expires.UTC().Format(time.RFC3339))
		}
	}
	for g, until := range p.guests {
		if !now.Before(until) {
			delete(p.guests, g)
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
			gone = append(gone, g)
		}
		clear(p.guests)
		p.failures = 0
	}
	p.mu.Unlock()
	for _, g := range gone {
		if p.closePeer != nil {
			go p.closePeer(g)
		}
	}
}

// Open reports how many invites are open.
func (p *Pairing) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked(time.Now())
	return len(p.invites)
}

// admitGuest lets a stranger in while an invite is open and there is room.
func (p *Pairing) admitGuest(g peer.ID) bool {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked(now)
	if len(p.invites) == 0 {
		return false
	}
	if _, ok := p.guests[g]; !ok && len(p.guests) >= MaxPairGuests {
		return false
	}
	until := now
	for _, inv := range p.invites {
		if inv.expires.After(until) {
			until = inv.expires
		}
	}
	p.guests[g] = until
	return true
}

func (p *Pairing) isGuest(g peer.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.guests[g]
	return ok && time.Now().Before(until)
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
		delete(p.guests, joiner)
		if why, ok := p.spent[id]; ok {
			return "", "", fmt.Errorf("this invite code can no longer be used: %s; ask for a new one with `fungi device invite`", why)
		}
		return "", "", errors.New("the invite code is not one of this node's open invites; ask for a new one with `fungi device invite`")
	}
	if !hmac.Equal(req.Proof, pairProof(inv.secret, p.self, joiner)) {
		delete(p.guests, joiner)
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
	delete(p.guests, joiner)
	p.spendLocked(id, "it was used by "+joiner.String())
	return inv.role, inv.alias, nil
}

// Paired is called when a joiner proved an invite: it must trust the
// joiner with role (and name it alias, when set) before it returns.
type Paired func(joiner peer.ID, role, alias string) error

// ServePair registers the pairing protocol on h and lets gate admit
// guests while an invite of the returned Pairing is open.
func ServePair(h host.Host, gate *TrustGate, paired Paired) *Pairing {
	p := NewPairing(h.ID(), func(id peer.ID) {
		if gate.Role(id) == "" && !gate.Admitted(id) {
			h.Network().ClosePeer(id)
		}
	})
	gate.SetPairing(p)
	h.SetStreamHandler(PairProtocol, func(s network.Stream) {
		from := s.Conn().RemotePeer()
		s.SetDeadline(time.Now().Add(pairTimeout))
		var req messages.PairRequest
		if err := ReadFrame(bufio.NewReader(s), &req, maxPairFrame); err != nil {
			s.Reset()
			return
		}
		role, alias, err := p.redeem(from, &req)
		if err == nil {
			if err = paired(from, role, alias); err != nil {
				err = fmt.Errorf("the invite was right, but this node could not trust you: %v", err)
			}
		}
		reply := &messages.PairReply{Ok: err == nil, Role: role}
		if err != nil {
			reply.Role, reply.Error = "", err.Error()
		}
		if WriteFrame(s, reply) != nil {
			s.Reset()
			return
		}
		s.Close()
		// A refused joiner is shut out once it had time to read why:
		// closing its connection at once could drop the reply in flight.
		if err != nil {
			time.AfterFunc(refusedGrace, func() { p.closePeer(from) })
		}
	})
	return p
}

// Pair redeems an invite on the inviter, over a connection the caller
// opened: it sends the proof and returns the role the inviter gave this
// node, or the inviter's reason for refusing.
func Pair(ctx context.Context, h host.Host, code *InviteCode) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, pairTimeout)
	defer cancel()
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "fungi pair"), code.PeerID, PairProtocol)
	if err != nil {
		return "", fmt.Errorf("open the pairing stream: %w", explainReset(err))
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	req := &messages.PairRequest{InviteId: code.ID, Proof: pairProof(code.Secret, code.PeerID, h.ID())}
	if err := WriteFrame(s, req); err != nil {
		s.Reset()
		return "", fmt.Errorf("send the proof: %w", explainReset(err))
	}
	s.CloseWrite()
	var reply messages.PairReply
	if err := ReadFrame(bufio.NewReader(s), &reply, maxPairReply); err != nil {
		s.Reset()
		return "", fmt.Errorf("read the answer: %w", explainReset(err))
	}
	if !reply.Ok {
		return "", &RemoteError{Code: "denied", Message: reply.Error}
	}
	return reply.Role, nil
}
