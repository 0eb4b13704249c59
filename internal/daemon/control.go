package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/actors"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/manifest"
	"github.com/fungi-go/fungi/transport/wire"
)

// handleControl answers a peer's request on the control protocol: the role
// is checked, then the request goes to the same actors the local CLI uses.
func (s *apiServer) handleControl(ctx context.Context, from peer.ID, role string, req *messages.Envelope, reply func(*messages.Envelope) error) error {
	switch body := req.Body.(type) {
	case *messages.Envelope_Catalog:
		c, err := s.node.Catalog(quickTimeout)
		return controlReply(reply, err, &messages.Envelope{Body: &messages.Envelope_CatalogList{CatalogList: c}})
	case *messages.Envelope_CatalogInspect:
		e, err := s.node.CatalogInspect(body.CatalogInspect, quickTimeout)
		return controlReply(reply, err, &messages.Envelope{Body: &messages.Envelope_CatalogEntry{CatalogEntry: e}})
	}
	if role != actors.RoleAdmin {
		return &wire.RemoteError{Code: "denied", Message: fmt.Sprintf(
			"this node gives %s the %s role, and administering services needs admin; the node's owner grants it with: fungi device trust %s --role admin",
			from, role, from)}
	}
	switch body := req.Body.(type) {
	case *messages.Envelope_RuntimesRequest:
		return reply(&messages.Envelope{Body: &messages.Envelope_Runtimes{Runtimes: s.runtimes()}})
	case *messages.Envelope_Pull:
		return s.remotePull(body.Pull, reply)
	case *messages.Envelope_List:
		l, err := s.node.ListServices(quickTimeout)
		return controlReply(reply, err, &messages.Envelope{Body: &messages.Envelope_Services{Services: l}})
	case *messages.Envelope_Start:
		if body.Start.Wait {
			return s.remoteStartWait(ctx, body.Start, reply)
		}
		info, err := s.node.StartService(body.Start, startTimeout)
		return controlReply(reply, err, serviceEnvelope(info))
	case *messages.Envelope_Stop:
		info, err := s.node.StopService(body.Stop, startTimeout)
		return controlReply(reply, err, serviceEnvelope(info))
	case *messages.Envelope_Remove:
		r, err := s.node.RemoveService(body.Remove, startTimeout)
		return controlReply(reply, err, &messages.Envelope{Body: &messages.Envelope_Removed{Removed: r}})
	case *messages.Envelope_Inspect:
		info, err := s.node.InspectService(body.Inspect, quickTimeout)
		return controlReply(reply, err, serviceEnvelope(info))
	case *messages.Envelope_Logs:
		return s.streamLogs(ctx, body.Logs, func(c *messages.LogChunk) error {
			return reply(&messages.Envelope{Body: &messages.Envelope_LogChunk{LogChunk: c}})
		})
	default:
		return &wire.RemoteError{Code: "invalid", Message: "this node does not know that request; are both nodes the same version of fungi?"}
	}
}

// controlReply answers a peer with the node's answer in its envelope, or
// with err as the peer's error when the node refused.
func controlReply(reply func(*messages.Envelope) error, err error, answer *messages.Envelope) error {
	if err != nil {
		return remoteError(err)
	}
	return reply(answer)
}

func serviceEnvelope(info *messages.ServiceInfo) *messages.Envelope {
	return &messages.Envelope{Body: &messages.Envelope_Service{Service: info}}
}

// remotePull registers a service a peer sent. The manifest's source.file
// is never read here: the file must travel with the manifest, checksummed.
func (s *apiServer) remotePull(req *messages.PullServiceRequest, reply func(*messages.Envelope) error) error {
	m, err := manifest.Parse(req.ManifestYaml)
	if err != nil {
		return &wire.RemoteError{Code: "invalid", Message: err.Error()}
	}
	req.ManifestDir = ""
	if m.Spec.Source.File != "" {
		if len(req.Artifact) == 0 {
			return &wire.RemoteError{Code: "invalid", Message: "source.file names a file on the controller; it must be shipped with the manifest (fungi peer admin service pull does that)"}
		}
		sum := sha256.Sum256(req.Artifact)
		if hex.EncodeToString(sum[:]) != req.ArtifactSha256 {
			return &wire.RemoteError{Code: "invalid", Message: "the shipped file does not match its checksum; it was damaged on the way, pull again"}
		}
	} else {
		req.Artifact = nil
	}
	var mu sync.Mutex
	progress := func(p *messages.PullProgress) {
		mu.Lock()
		defer mu.Unlock()
		reply(&messages.Envelope{Body: &messages.Envelope_PullProgress{PullProgress: p}})
	}
	info, err := s.node.PullService(req, progress, pullTimeout)
	if err != nil {
		return remoteError(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return reply(&messages.Envelope{Body: &messages.Envelope_Service{Service: info}})
}

// remoteStartWait is start --wait for a peer: the run's log lines, then
// the service as the run ended.
func (s *apiServer) remoteStartWait(ctx context.Context, req *messages.StartService, reply func(*messages.Envelope) error) error {
	err := s.startWait(ctx, req, func(c *messages.LogChunk) error {
		return reply(&messages.Envelope{Body: &messages.Envelope_LogChunk{LogChunk: c}})
	})
	if err != nil {
		return remoteError(err)
	}
	return nil
}

func remoteError(err error) error {
	var ae *actors.Error
	if errors.As(err, &ae) {
		code := "failed"
		switch ae.Kind {
		case actors.NotFound:
			code = "not_found"
		case actors.Invalid:
			code = "invalid"
		case actors.Conflict:
			code = "conflict"
		}
		return &wire.RemoteError{Code: code, Message: ae.Msg}
	}
	return &wire.RemoteError{Code: "failed", Message: err.Error()}
}

// resolveAccess admits an access stream from a peer to a published, running
// service.
func (s *apiServer) resolveAccess(from peer.ID, hdr *messages.AccessHeader) (string, error) {
	t, err := s.node.ResolveAccess(&actors.ResolveAccess{ServiceID: hdr.ServiceId, Port: hdr.Port}, quickTimeout)
	if err != nil {
		return "", err
	}
	if !t.External {
		return t.Addr, nil
	}
	// The target is checked against external.allowedHosts as it is now and
	// resolved once; the stream connects to that address, not the name.
	// Only a name's lookup waits on anything: an address (the usual
	// loopback target) is checked without a timer for every connection.
	ctx := context.Background()
	if _, perr := netip.ParseAddr(t.Host); perr != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, quickTimeout)
		defer cancel()
	}
	addr, err := s.external.DialAddress(ctx, t.Host, t.Port)
	if err != nil {
		return "", fmt.Errorf("%s is published at %s, which this node may not connect to now: %v", hdr.ServiceId, t.Addr, err)
	}
	return addr, nil
}
