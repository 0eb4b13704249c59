package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/actors"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/manifest"
	"github.com/fungi-go/fungi/transport"
)

// handleControl answers a peer's request on the control protocol: the role
// is checked, then the request goes to the same actors the local CLI uses.
func (s *apiServer) handleControl(ctx context.Context, from peer.ID, role string, req *messages.Envelope, reply func(*messages.Envelope) error) error {
	switch body := req.Body.(type) {
	case *messages.Envelope_Catalog:
		return s.controlAsk(body.Catalog, reply)
	case *messages.Envelope_CatalogInspect:
		return s.controlAsk(body.CatalogInspect, reply)
	}
	if role != actors.RoleAdmin {
		return &transport.RemoteError{Code: "denied", Message: fmt.Sprintf(
			"this node gives %s the %s role, and administering services needs admin; the node's owner grants it with: fungi device trust %s --role admin",
			from, role, from)}
	}
	switch body := req.Body.(type) {
	case *messages.Envelope_RuntimesRequest:
		return reply(&messages.Envelope{Body: &messages.Envelope_Runtimes{Runtimes: s.runtimes(body.RuntimesRequest)}})
	case *messages.Envelope_Pull:
		return s.remotePull(body.Pull, reply)
	case *messages.Envelope_List:
		return s.controlAsk(body.List, reply)
	case *messages.Envelope_Start:
		if body.Start.Wait {
			return s.remoteStartWait(ctx, body.Start, reply)
		}
		return s.controlAsk(body.Start, reply)
	case *messages.Envelope_Stop:
		return s.controlAsk(body.Stop, reply)
	case *messages.Envelope_Remove:
		return s.controlAsk(body.Remove, reply)
	case *messages.Envelope_Inspect:
		return s.controlAsk(body.Inspect, reply)
	case *messages.Envelope_Logs:
		return s.streamLogs(ctx, body.Logs, func(c *messages.LogChunk) error {
			return reply(&messages.Envelope{Body: &messages.Envelope_LogChunk{LogChunk: c}})
		})
	default:
		return &transport.RemoteError{Code: "invalid", Message: "this node does not know that request; are both nodes the same version of fungi?"}
	}
}

// controlAsk sends a request to the actors and wraps the answer.
func (s *apiServer) controlAsk(msg any, reply func(*messages.Envelope) error) error {
	timeout := quickTimeout
	switch msg.(type) {
	case *messages.StartService, *messages.StopService, *messages.RemoveService:
		timeout = startTimeout
	}
	res, err := s.node.Ask(msg, timeout)
	if err != nil {
		return remoteError(err)
	}
	e := &messages.Envelope{}
	switch r := res.(type) {
	case *messages.Catalog:
		e.Body = &messages.Envelope_CatalogList{CatalogList: r}
	case *messages.CatalogEntry:
		e.Body = &messages.Envelope_CatalogEntry{CatalogEntry: r}
	case *messages.ServiceList:
		e.Body = &messages.Envelope_Services{Services: r}
	case *messages.ServiceInfo:
		e.Body = &messages.Envelope_Service{Service: r}
	case *messages.RemoveServiceResponse:
		e.Body = &messages.Envelope_Removed{Removed: r}
	default:
		return fmt.Errorf("internal error: unexpected answer %T", res)
	}
	return reply(e)
}

// remotePull registers a service a peer sent. The manifest's source.file
// is never read here: the file must travel with the manifest, checksummed.
func (s *apiServer) remotePull(req *messages.PullServiceRequest, reply func(*messages.Envelope) error) error {
	m, err := manifest.Parse(req.ManifestYaml)
	if err != nil {
		return &transport.RemoteError{Code: "invalid", Message: err.Error()}
	}
	req.ManifestDir = ""
	if m.Spec.Source.File != "" {
		if len(req.Artifact) == 0 {
			return &transport.RemoteError{Code: "invalid", Message: "source.file names a file on the controller; it must be shipped with the manifest (fungi peer admin service pull does that)"}
		}
		sum := sha256.Sum256(req.Artifact)
		if hex.EncodeToString(sum[:]) != req.ArtifactSha256 {
			return &transport.RemoteError{Code: "invalid", Message: "the shipped file does not match its checksum; it was damaged on the way, pull again"}
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
		return &transport.RemoteError{Code: code, Message: ae.Msg}
	}
	return &transport.RemoteError{Code: "failed", Message: err.Error()}
}

// resolveAccess admits an access stream from a peer to a published, running
// service.
func (s *apiServer) resolveAccess(from peer.ID, hdr *messages.AccessHeader) (string, error) {
	res, err := s.node.Ask(&actors.ResolveAccess{ServiceID: hdr.ServiceId, Port: hdr.Port}, quickTimeout)
	if err != nil {
		return "", err
	}
	t := res.(*actors.AccessTarget)
	if !t.External {
		return t.Addr, nil
	}
	// The target is checked against external.allowedHosts as it is now and
	// resolved once; the stream connects to that address, not the name.
	ctx, cancel := context.WithTimeout(context.Background(), quickTimeout)
	defer cancel()
	addr, err := s.external.DialAddress(ctx, t.Host, t.Port)
	if err != nil {
		return "", fmt.Errorf("%s is published at %s, which this node may not connect to now: %v", hdr.ServiceId, t.Addr, err)
	}
	return addr, nil
}
