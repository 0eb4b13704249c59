package daemon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fungi-go/fungi/actors"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/pair"
	"github.com/fungi-go/fungi/transport/wire"
)

// joinConnectTimeout bounds the joiner's dial of the inviter: every address
// of the code at once, a relayed one included.
const joinConnectTimeout = 30 * time.Second

var aliasRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ListPending lists the strangers the gate refused.
func (s *apiServer) ListPending(context.Context, *messages.PendingRequest) (*messages.PendingDevices, error) {
	out := &messages.PendingDevices{}
	for _, p := range s.net.Gate.Pending() {
		out.Devices = append(out.Devices, &messages.PendingDevice{
			PeerId:    p.ID.String(),
			Addr:      p.Addr,
			FirstSeen: p.FirstSeen.Format(time.RFC3339),
			LastSeen:  p.LastSeen.Format(time.RFC3339),
			Attempts:  uint32(min(p.Attempts, math.MaxUint32)),
		})
	}
	return out, nil
}

// DismissPending drops a stranger from the pending list.
func (s *apiServer) DismissPending(ctx context.Context, req *messages.PendingDismiss) (*messages.PendingDevices, error) {
	id, err := peer.Decode(req.PeerId)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "peer ID %q: %v (copy it from `fungi device pending`)", req.PeerId, err)
	}
	if !s.net.Gate.Dismiss(id) {
		return nil, status.Errorf(codes.NotFound, "%s is not pending (any more); `fungi device pending` lists who is", req.PeerId)
	}
	return s.ListPending(ctx, &messages.PendingRequest{})
}

// paired trusts a device that redeemed one of this node's invites.
func (s *apiServer) paired(joiner peer.ID, role, alias string) error {
	if _, err := s.node.TrustDevice(&messages.DeviceTrust{Device: joiner.String(), Role: role}, quickTimeout); err != nil {
		return err
	}
	if alias != "" {
		if _, err := s.node.RenameDevice(&messages.DeviceRename{Device: joiner.String(), Alias: alias}, quickTimeout); err != nil {
			return fmt.Errorf("trusted, but naming it %s failed: %w", alias, err)
		}
	}
	return nil
}

// InviteDevice opens a single-use invite and returns its code.
func (s *apiServer) InviteDevice(_ context.Context, req *messages.InviteRequest) (*messages.Invite, error) {
	role := req.Role
	if role == "" {
		role = actors.RoleAccess
	}
	if role != actors.RoleAccess && role != actors.RoleAdmin {
		return nil, status.Errorf(codes.InvalidArgument, "role %q: use access (catalog and access) or admin (also administer services)", role)
	}
	if req.Alias != "" && !aliasRE.MatchString(req.Alias) {
		return nil, status.Errorf(codes.InvalidArgument, "alias %q: use lower-case letters, digits and hyphens (at most 63)", req.Alias)
	}
	if req.ExpiresSeconds < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "--expires must be positive")
	}
	addrs := s.net.Host.Addrs()
	code, expires, err := s.net.Pairing(s.paired).NewInvite(role, req.Alias, time.Duration(req.ExpiresSeconds)*time.Second, addrs)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	out := &messages.Invite{Code: code, PeerId: s.net.Host.ID().String(), Role: role, Expires: expires.UTC().Format(time.RFC3339)}
	decoded, err := pair.DecodeInviteCode(code)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	for _, a := range decoded.Addrs {
		out.Addrs = append(out.Addrs, a.String())
	}
	return out, nil
}

// JoinDevice redeems another node's invite: it adds the inviter to the
// address book with the code's addresses, connects, and proves the
// secret. On a refusal a device the book did not have before is removed
// again.
func (s *apiServer) JoinDevice(ctx context.Context, req *messages.JoinRequest) (*messages.Device, error) {
	code, err := pair.DecodeInviteCode(req.Code)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	if code.PeerID == s.net.Host.ID() {
		return nil, status.Error(codes.InvalidArgument, "this is this node's own invite; run `fungi device join` on the other device")
	}
	if !time.Now().Before(code.Expires) {
		return nil, status.Errorf(codes.FailedPrecondition, "this invite code expired at %s; ask for a new one (`fungi device invite` on %s)",
			code.Expires.UTC().Format(time.RFC3339), code.PeerID)
	}
	_, resolveErr := s.node.ResolveDevice(&messages.DeviceResolve{Device: code.PeerID.String()}, quickTimeout)
	known := resolveErr == nil
	// A device already in the book keeps its alias until the pairing
	// succeeds: a refused code changes nothing.
	add := &messages.DeviceAdd{PeerId: code.PeerID.String()}
	if !known {
		add.Alias = req.Alias
	}
	for _, a := range code.Addrs {
		add.Addrs = append(add.Addrs, a.String())
	}
	if _, err := apiAnswer(s.node.AddDevice(add, quickTimeout)); err != nil {
		return nil, err
	}
	undo := func() {
		if !known {
			s.node.RemoveDevice(&messages.DeviceRemove{Device: code.PeerID.String()}, quickTimeout)
		}
	}
	c, cancel := context.WithTimeout(ctx, joinConnectTimeout)
	defer cancel()
	if err := s.net.ConnectNow(c, code.PeerID); err != nil {
		undo()
		return nil, status.Errorf(codes.Unavailable, "could not reach %s at any of the code's %d addresses: %v; is its daemon running, and is the invite still open there (a used or expired invite shuts the door)?",
			code.PeerID, len(code.Addrs), err)
	}
	_, err = pair.Join(c, s.net.Host, code)
	if err != nil {
		undo()
		var re *wire.RemoteError
		if errors.As(err, &re) {
			return nil, status.Errorf(codes.PermissionDenied, "%s refused the invite: %s", code.PeerID, re.Message)
		}
		return nil, status.Errorf(codes.Unavailable, "pairing with %s failed: %v; it closed the connection, which it does when no invite is open there (a used or expired invite shuts the door: ask for a new code) or when too many devices are pairing with it at once (try again in a few seconds)", code.PeerID, err)
	}
	if known && req.Alias != "" {
		return apiAnswer(s.node.RenameDevice(&messages.DeviceRename{Device: code.PeerID.String(), Alias: req.Alias}, quickTimeout))
	}
	return s.resolve(code.PeerID.String())
}
