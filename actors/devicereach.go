package actors

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// Reaching a device again wherever it went (issue 21). Both sides of a pair
// know each other: the node that trusts a device remembers where the device
// connected from and the addresses it announced, and dials it back after a
// restart, so the two meet again whichever of them moved. Addresses that
// keep failing while the device is reached elsewhere leave the book.

// maxSeenAddrs bounds the addresses kept of what a device announced; a
// node listening on every interface of a busy machine stays below it.
const maxSeenAddrs = 16

// maxAddrLen bounds one address taken from the network into the book.
const maxAddrLen = 1024

// addrFailures counts the dials of a device in a row that failed on one of
// its addresses, and since when: the input of the ageing rule.
type addrFailures struct {
	Count int       `json:"count"`
	Since time.Time `json:"since"`
}

// ageRule drops an address once at least Failures dials in a row failed on
// it, the first at least After ago, and the device was reached elsewhere
// since it began to fail: a device that is simply off keeps its addresses.
type ageRule struct {
	Failures int
	After    time.Duration
}

var (
	// seenAgeing is for the addresses a device announced: if it still
	// listens there it announces them again at its next connection, so
	// they may go soon.
	seenAgeing = ageRule{Failures: 3, After: 10 * time.Minute}
	// typedAgeing is for the addresses the owner typed (`device add
	// --addr`): they stay much longer, as one may work only from elsewhere
	// (a port forward, used away from home), and the drop is logged.
	typedAgeing = ageRule{Failures: 10, After: 3 * 24 * time.Hour}
)

// addrKey is the form an address is compared and counted in: without the
// /p2p/<id> suffix that names the device rather than a place.
func addrKey(a string) string {
	m, err := ma.NewMultiaddr(a)
	if err != nil {
		return a
	}
	if transport, _ := peer.SplitAddr(m); transport != nil {
		return transport.String()
	}
	return m.String()
}

// dialable reports whether the book knows somewhere to dial d.
func (d *deviceRecord) dialable() bool {
	return d.LastAddr != "" || len(d.Addrs) > 0 || len(d.Seen) > 0
}

// wantsSession reports whether this node keeps d connected: a device its
// owner added to dial, and a trusted one once the book knows where it was,
// so that a restart of this node, on another port or address, is followed
// by this node dialing the device instead of waiting for it.
func wantsSession(d *deviceRecord) bool {
	return d.Dial || (d.Role != "" && d.dialable())
}

// tracked are the keys of the addresses whose failures count: the typed
// and the announced ones. The last address is not among them: every reach
// replaces it.
func (d *deviceRecord) tracked() map[string]bool {
	out := map[string]bool{}
	for _, a := range d.Addrs {
		out[addrKey(a)] = true
	}
	for _, a := range d.Seen {
		out[addrKey(a)] = true
	}
	return out
}

// recordFailures counts one failed dial on each of addrs the book keeps
// for d, and reports whether anything changed.
func (d *deviceRecord) recordFailures(addrs []string, now time.Time) bool {
	tracked := d.tracked()
	counted := map[string]bool{}
	for _, a := range addrs {
		k := addrKey(a)
		if !tracked[k] || counted[k] {
			continue
		}
		counted[k] = true
		if d.Failing == nil {
			d.Failing = map[string]*addrFailures{}
		}
		f := d.Failing[k]
		if f == nil {
			f = &addrFailures{Since: now}
			d.Failing[k] = f
		}
		f.Count++
	}
	return len(counted) > 0
}

// clearFailing forgets the failures of addr, which just worked.
func (d *deviceRecord) clearFailing(addr string) bool {
	k := addrKey(addr)
	if _, ok := d.Failing[k]; !ok {
		return false
	}
	delete(d.Failing, k)
	return true
}

// pruneFailing forgets the failures of addresses the book no longer keeps.
func (d *deviceRecord) pruneFailing() {
	tracked := d.tracked()
	for k := range d.Failing {
		if !tracked[k] {
			delete(d.Failing, k)
		}
	}
	if len(d.Failing) == 0 {
		d.Failing = nil
	}
}

// agedOut lists the typed and the announced addresses of d that the ageing
// rules drop at now, given that the device was last reached at reachedAt.
// A typed address the device itself still announces is kept: it says it
// listens there.
func agedOut(d *deviceRecord, reachedAt, now time.Time) (typed, seen []string) {
	announced := map[string]bool{}
	for _, a := range d.Seen {
		announced[addrKey(a)] = true
	}
	due := func(a string, rule ageRule) bool {
		f := d.Failing[addrKey(a)]
		return f != nil && f.Count >= rule.Failures && now.Sub(f.Since) >= rule.After && reachedAt.After(f.Since)
	}
	for _, a := range d.Addrs {
		if !announced[addrKey(a)] && due(a, typedAgeing) {
			typed = append(typed, a)
		}
	}
	for _, a := range d.Seen {
		if due(a, seenAgeing) {
			seen = append(seen, a)
		}
	}
	return typed, seen
}

// ageOut drops the addresses of d the ageing rules say are dead, from the
// book and from the peerstore, and reports whether it dropped any. The
// caller saves.
func (b *deviceBook) ageOut(ctx actor.Context, d *deviceRecord, reachedAt, now time.Time) bool {
	typed, seen := agedOut(d, reachedAt, now)
	if len(typed) == 0 && len(seen) == 0 {
		return false
	}
	gone := map[string]bool{}
	for _, a := range typed {
		f := d.Failing[addrKey(a)]
		ctx.Logger().Warn("an address you added kept failing while the device answered elsewhere; it leaves the address book (add it again with `fungi device add --addr` if it is still right)",
			"peer", d.PeerID, "alias", d.Alias, "addr", a, "failedDials", f.Count, "failingSince", f.Since.Format(time.RFC3339), "answersAt", d.LastAddr)
		gone[addrKey(a)] = true
	}
	for _, a := range seen {
		ctx.Logger().Info("an address a device announced kept failing; it leaves the address book", "peer", d.PeerID, "addr", a)
		gone[addrKey(a)] = true
	}
	keep := func(a string) bool { return !gone[addrKey(a)] }
	d.Addrs = slices.DeleteFunc(d.Addrs, func(a string) bool { return !keep(a) })
	d.Seen = slices.DeleteFunc(d.Seen, func(a string) bool { return !keep(a) })
	d.pruneFailing()
	// The last address stays dialable: every reach replaces it, and it
	// may be the one that works.
	if f, ok := b.net.(interface {
		ForgetAddrs(peer.ID, []ma.Multiaddr)
	}); ok {
		if id, err := peer.Decode(d.PeerID); err == nil {
			var forget []string
			for k := range gone {
				if k != addrKey(d.LastAddr) {
					forget = append(forget, k)
				}
			}
			f.ForgetAddrs(id, parseAddrs(forget))
		}
	}
	return true
}

// dialFailed is a session saying a dial of its device failed on addrs.
type dialFailed struct {
	id    peer.ID
	addrs []string
}

// failedAddrs are the addresses a failed dial tried and failed on; a dial
// cut short by its own cancellation says nothing of them.
func failedAddrs(err error) []string {
	var de *swarm.DialError
	if !errors.As(err, &de) {
		return nil
	}
	var out []string
	for _, te := range de.DialErrors {
		if te.Address == nil || errors.Is(te.Cause, context.Canceled) {
			continue
		}
		out = append(out, te.Address.String())
	}
	return out
}

// dialFailedOn counts the failures and drops what the ageing rules say,
// judging by when the device was last reached.
func (b *deviceBook) dialFailedOn(ctx actor.Context, msg *dialFailed) {
	d := b.find(msg.id.String())
	if d == nil {
		return
	}
	now := time.Now().UTC()
	if !d.recordFailures(msg.addrs, now) {
		return
	}
	b.ageOut(ctx, d, d.LastConnected, now)
	if err := b.save(); err != nil {
		ctx.Logger().Warn("could not remember which addresses of a device fail", "peer", d.PeerID, "err", err)
	}
}

// peerIdentified is the network saying where a peer says it listens.
type peerIdentified struct {
	id    peer.ID
	addrs []ma.Multiaddr
}

// watchIdentified follows what peers announce of themselves, when the
// network tells.
func (b *deviceBook) watchIdentified(ctx actor.Context) {
	w, ok := b.net.(interface {
		OnIdentified(func(peer.ID, []ma.Multiaddr)) (func(), error)
	})
	if !ok {
		return
	}
	self, system := ctx.Self(), ctx.ActorSystem()
	stop, err := w.OnIdentified(func(id peer.ID, addrs []ma.Multiaddr) {
		system.Root.Send(self, &peerIdentified{id: id, addrs: addrs})
	})
	if err != nil {
		ctx.Logger().Warn("the addresses devices announce are not remembered; a device that only dialed this node is not dialed back", "err", err)
		return
	}
	b.stopWatch = append(b.stopWatch, stop)
}

// identified keeps what a device in the book announced as its addresses,
// replacing what it announced before: its own word on where it listens now.
func (b *deviceBook) identified(ctx actor.Context, msg *peerIdentified) {
	d := b.find(msg.id.String())
	if d == nil || (!d.Dial && d.Role == "") {
		return
	}
	var seen []string
	for _, a := range msg.addrs {
		if len(seen) == maxSeenAddrs {
			break
		}
		s := a.String()
		if len(s) > maxAddrLen {
			continue
		}
		if k := addrKey(s); !slices.Contains(seen, k) {
			seen = append(seen, k)
		}
	}
	slices.Sort(seen) // identify's order varies; the book changes only when the set does
	if slices.Equal(seen, d.Seen) {
		return
	}
	d.Seen = seen
	d.pruneFailing()
	if err := b.save(); err != nil {
		ctx.Logger().Warn("could not remember where a device listens", "peer", d.PeerID, "err", err)
	}
	b.net.AddAddrs(msg.id, parseAddrs(seen))
	b.ensureSession(ctx, d)
}

// rememberAnnounced takes, for d just trusted, the addresses it announced
// on a connection open now: identify told them before d was trusted, when
// the book did not keep them (identified), and without them a trusted
// device that joined by invite is never dialed back after it restarts.
func (b *deviceBook) rememberAnnounced(ctx actor.Context, d *deviceRecord) {
	n, ok := b.net.(interface{ AnnouncedAddrs(peer.ID) []ma.Multiaddr })
	if !ok || len(d.Seen) > 0 {
		return
	}
	id, err := peer.Decode(d.PeerID)
	if err != nil {
		return
	}
	if addrs := n.AnnouncedAddrs(id); len(addrs) > 0 {
		b.identified(ctx, &peerIdentified{id: id, addrs: addrs})
	}
}

// ensureSession starts the session of d if the book now wants one.
func (b *deviceBook) ensureSession(ctx actor.Context, d *deviceRecord) {
	id, err := peer.Decode(d.PeerID)
	if err != nil || b.net == nil || !wantsSession(d) {
		return
	}
	if _, ok := b.sessions[id]; !ok {
		b.sessions[id] = ctx.Spawn(peerSessionProps(id, b.net))
	}
}
