package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fungi-go/fungi/actors"
	"github.com/fungi-go/fungi/internal/dialerr"
	"github.com/fungi-go/fungi/internal/names"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport"
	"github.com/fungi-go/fungi/transport/wire"
)

const connectTimeout = 10 * time.Second

// resolve finds the device a name gives ("" the current peer), with the
// status the CLI reports when there is none.
func (s *apiServer) resolve(name string) (*messages.Device, error) {
	return apiAnswer(s.node.ResolveDevice(&messages.DeviceResolve{Device: name}, quickTimeout))
}

func (s *apiServer) AddDevice(_ context.Context, req *messages.DeviceAdd) (*messages.Device, error) {
	return apiAnswer(s.node.AddDevice(req, quickTimeout))
}
func (s *apiServer) RemoveDevice(_ context.Context, req *messages.DeviceRemove) (*messages.Device, error) {
	return apiAnswer(s.node.RemoveDevice(req, quickTimeout))
}
func (s *apiServer) RenameDevice(_ context.Context, req *messages.DeviceRename) (*messages.Device, error) {
	return apiAnswer(s.node.RenameDevice(req, quickTimeout))
}
func (s *apiServer) TrustDevice(_ context.Context, req *messages.DeviceTrust) (*messages.Device, error) {
	return apiAnswer(s.node.TrustDevice(req, quickTimeout))
}
func (s *apiServer) UntrustDevice(_ context.Context, req *messages.DeviceUntrust) (*messages.Device, error) {
	return apiAnswer(s.node.UntrustDevice(req, quickTimeout))
}
func (s *apiServer) UsePeer(_ context.Context, req *messages.PeerUse) (*messages.Device, error) {
	return apiAnswer(s.node.UsePeer(req, quickTimeout))
}
func (s *apiServer) CurrentPeer(context.Context, *messages.PeerCurrent) (*messages.Device, error) {
	return apiAnswer(s.node.CurrentPeer(quickTimeout))
}
func (s *apiServer) ClearPeer(context.Context, *messages.PeerClear) (*messages.Device, error) {
	return apiAnswer(s.node.ClearPeer(quickTimeout))
}
func (s *apiServer) ResolveDevice(_ context.Context, req *messages.DeviceResolve) (*messages.Device, error) {
	return apiAnswer(s.node.ResolveDevice(req, quickTimeout))
}

func (s *apiServer) ListDevices(context.Context, *messages.DeviceListRequest) (*messages.DeviceList, error) {
	return apiAnswer(s.node.ListDevices(quickTimeout))
}

func (s *apiServer) Mdns(context.Context, *messages.MdnsRequest) (*messages.MdnsPeers, error) {
	return apiAnswer(s.node.MdnsPeers(quickTimeout))
}

// target resolves a device name ("" for the current peer) and makes sure
// there is a connection to it, so an offline peer fails fast with a reason.
func (s *apiServer) target(ctx context.Context, name string) (*messages.Device, peer.ID, error) {
	d, err := s.resolve(name)
	if err != nil {
		return nil, "", err
	}
	id, err := peer.Decode(d.PeerId)
	if err != nil {
		return nil, "", status.Error(codes.Internal, err.Error())
	}
	c, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	// A user's command: not refused by the backoff of a background dial.
	if err := s.net.ConnectNow(c, id); err != nil {
		return d, id, s.unreachable(d, err)
	}
	return d, id, nil
}

func deviceName(d *messages.Device) string {
	if d.Alias != "" {
		return fmt.Sprintf("%s (%s)", d.Alias, d.PeerId)
	}
	return d.PeerId
}

// Remote runs one request on a peer and streams its reply envelopes.
func (s *apiServer) Remote(req *messages.RemoteRequest, stream messages.Daemon_RemoteServer) error {
	d, id, err := s.target(stream.Context(), req.Device)
	if err != nil {
		return err
	}
	if req.Request == nil {
		return status.Error(codes.InvalidArgument, "no request")
	}
	req.Request.RequestId = uint64(time.Now().UnixNano())
	ctx, send := stream.Context(), stream.Send
	if pull := req.Request.GetPull(); pull != nil && len(pull.Artifact) > 0 {
		// The shipped file's progress goes out while replies may already
		// arrive: one lock keeps the two from sending at once.
		var mu sync.Mutex
		send = func(e *messages.Envelope) error { mu.Lock(); defer mu.Unlock(); return stream.Send(e) }
		what := "shipping source.file to " + firstNonEmpty(d.Alias, d.PeerId)
		ctx = transport.WithSendProgress(ctx, func(sent, total int64) {
			send(&messages.Envelope{Body: &messages.Envelope_PullProgress{PullProgress: &messages.PullProgress{Message: what, Current: sent, Total: total}}})
		})
	}
	err = transport.CallControl(ctx, s.net.Host, id, req.Request, send)
	return s.peerError(d, err)
}

// unreachable explains a failed connection: the peer is down, its
// addresses are wrong, or it does not trust this node (its gate closes the
// connection right after the handshake, which looks the same from here).
// The trust hint is given only when the cause was trust: a refused or
// timed-out dial says so in words instead of libp2p's text.
func (s *apiServer) unreachable(d *messages.Device, err error) error {
	if dialerr.Classify(err) == dialerr.NotTrusted {
		return status.Errorf(codes.Unavailable, "%s %s; its owner lets it in with `fungi device trust %s`", deviceName(d), dialerr.Words(err), s.net.Host.ID())
	}
	return status.Errorf(codes.Unavailable, "%s is unreachable: it %s (`fungi device list` shows its addresses)", deviceName(d), dialerr.Words(err))
}

// remoteWords makes a peer's refusal read as the peer's: the commands it
// suggests are run here through `fungi peer admin`, and "this node" is
// the peer.
func remoteWords(msg string, d *messages.Device) string {
	name := firstNonEmpty(d.Alias, d.PeerId)
	msg = strings.ReplaceAll(msg, "`fungi service ", "`fungi peer admin service ")
	msg = strings.ReplaceAll(msg, "(see `fungi peer admin service list`)", "(see `fungi peer admin service list --peer "+name+"`)")
	return strings.ReplaceAll(msg, "on this node", "on "+name)
}

// peerError says which peer said no, and keeps the kind of the refusal.
func (s *apiServer) peerError(d *messages.Device, err error) error {
	if err == nil {
		return nil
	}
	var re *wire.RemoteError
	if errors.As(err, &re) {
		code := codes.Unknown
		switch re.Code {
		case "denied":
			code = codes.PermissionDenied
		case "not_found":
			code = codes.NotFound
		case "invalid", "too_large":
			code = codes.InvalidArgument
		case "conflict":
			code = codes.FailedPrecondition
		}
		return status.Errorf(code, "%s refused: %s", deviceName(d), remoteWords(re.Message, d))
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return err
	}
	return s.unreachable(d, err)
}

// remoteCall runs a request that has one answer envelope.
func (s *apiServer) remoteCall(ctx context.Context, d *messages.Device, id peer.ID, req *messages.Envelope) (*messages.Envelope, error) {
	var answer *messages.Envelope
	err := transport.CallControl(ctx, s.net.Host, id, req, func(e *messages.Envelope) error {
		answer = e
		return nil
	})
	if err != nil {
		return nil, s.peerError(d, err)
	}
	if answer == nil {
		return nil, status.Errorf(codes.Unavailable, "%s sent no answer", deviceName(d))
	}
	return answer, nil
}

// Attach checks the service in the peer's catalog, then asks the access
// manager for the local entry.
func (s *apiServer) Attach(ctx context.Context, req *messages.AccessAttach) (*messages.AccessEntry, error) {
	d, id, err := s.target(ctx, req.Device)
	if err != nil {
		return nil, err
	}
	answer, err := s.remoteCall(ctx, d, id, &messages.Envelope{Body: &messages.Envelope_CatalogInspect{CatalogInspect: &messages.CatalogInspect{ServiceId: req.ServiceId}}})
	if err != nil {
		return nil, err
	}
	entry := answer.GetCatalogEntry()
	if entry == nil {
		return nil, status.Errorf(codes.Unavailable, "%s answered something else than a catalog entry", deviceName(d))
	}
	if entry.State != "running" {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is %s on %s; start it first (`fungi peer admin service start %s --peer %s`), then attach",
			req.ServiceId, entry.State, deviceName(d), req.ServiceId, firstNonEmpty(d.Alias, d.PeerId))
	}
	out, err := apiAnswer(s.node.AttachAccess(&actors.AttachAccess{PeerID: d.PeerId, Alias: d.Alias, Entry: entry, LocalPort: int(req.LocalPort), Port: req.Port}, quickTimeout))
	if err != nil {
		return nil, err
	}
	out.Alias = d.Alias
	// Its name depends on every entry's (collisions), so it is the one
	// the full list gives it.
	if all, err := s.ListAccess(ctx, &messages.AccessListRequest{}); err == nil {
		for _, e := range all.Entries {
			if e.PeerId == out.PeerId && e.ServiceId == out.ServiceId {
				out.Name, out.Url = e.Name, e.Url
			}
		}
	}
	return out, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ListAccess lists the access entries, each with its name on the names
// port; the names are given over all entries (collisions are resolved
// among all of them) before a device filter applies.
func (s *apiServer) ListAccess(ctx context.Context, req *messages.AccessListRequest) (*messages.AccessEntries, error) {
	device := ""
	if req.Device != "" {
		d, err := s.resolve(req.Device)
		if err != nil {
			return nil, err
		}
		device = d.PeerId
	}
	all, err := apiAnswer(s.node.ListAccess(&messages.AccessListRequest{}, quickTimeout))
	if err != nil {
		return nil, err
	}
	aliases := s.aliases()
	for _, e := range all.Entries {
		e.Alias = aliases[e.PeerId]
	}
	names.Assign(all.Entries, namesBase(s.home))
	if device == "" {
		return all, nil
	}
	out := &messages.AccessEntries{}
	for _, e := range all.Entries {
		if e.PeerId == device {
			out.Entries = append(out.Entries, e)
		}
	}
	return out, nil
}

func (s *apiServer) Detach(ctx context.Context, req *messages.AccessDetach) (*messages.AccessEntry, error) {
	msg := &messages.AccessDetach{ServiceId: req.ServiceId, KeepPort: req.KeepPort}
	if req.Device != "" {
		d, err := s.resolve(req.Device)
		if err != nil {
			return nil, err
		}
		msg.Device = d.PeerId
	}
	return apiAnswer(s.node.DetachAccess(msg, quickTimeout))
}

// aliases maps peer IDs to the aliases of the address book.
func (s *apiServer) aliases() map[string]string {
	out := map[string]string{}
	list, err := s.node.ListDevices(quickTimeout)
	if err != nil {
		return out
	}
	for _, d := range list.Devices {
		out[d.PeerId] = d.Alias
	}
	return out
}

func (s *apiServer) Connections(ctx context.Context, _ *messages.ConnectionListRequest) (*messages.ConnectionList, error) {
	aliases := s.aliases()
	list := s.net.Connections(func(p peer.ID) string { return aliases[p.String()] })
	s.freshRTT(ctx, list)
	return &messages.ConnectionList{Connections: list}, nil
}

// Ping measures the round trip to a device over the connection libp2p
// uses for it.
func (s *apiServer) Ping(req *messages.PingRequest, stream messages.Daemon_PingServer) error {
	d, id, err := s.target(stream.Context(), req.Device)
	if err != nil {
		return err
	}
	count := int(req.Count)
	if count <= 0 {
		count = 4
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	results := ping.Ping(network.WithAllowLimitedConn(ctx, "fungi ping"), s.net.Host, id)
	for seq := 1; seq <= count; seq++ {
		r := <-results
		out := &messages.PingResult{PeerId: d.PeerId, Alias: d.Alias, Seq: int32(seq), RttMs: float64(r.RTT) / float64(time.Millisecond)}
		if r.Error != nil {
			out.Error = r.Error.Error()
		}
		if conns := s.net.Host.Network().ConnsToPeer(id); len(conns) > 0 {
			out.RemoteAddr = conns[0].RemoteMultiaddr().String()
			out.Relayed = conns[0].Stat().Limited
		}
		if err := stream.Send(out); err != nil {
			return err
		}
		if r.Error != nil {
			return status.Errorf(codes.Unavailable, "ping %s: %v", deviceName(d), r.Error)
		}
		if seq < count {
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return nil
			}
		}
	}
	return nil
}
