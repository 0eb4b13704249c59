// Package webapi is the dashboard's JSON API. It is a client of the
// daemon's own gRPC API (the one the CLI calls), so every rule stays the
// daemon's: this package only translates HTTP to calls and back, and turns
// polling into server-sent events for open pages.
package webapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/fungi-go/fungi/messages"
)

// Limits on what a page may send.
const (
	maxManifestBytes = 1 << 20
	maxArtifactBytes = 256 << 20
	maxJSONBody      = 64 << 10
)

// callTimeout bounds every call but the streams; remote calls go over the
// network and the daemon bounds them too.
const callTimeout = 60 * time.Second

// API serves /api/.
type API struct {
	d   messages.DaemonClient
	mux *http.ServeMux
	// Poll is how often the event stream asks the daemon for changes while
	// a page is open; nothing is polled while none is.
	Poll time.Duration
	// eventSlots, logSlots and pullSlots bound the long requests served at
	// once (maxEventStreams, maxLogStreams, maxPulls).
	eventSlots, logSlots, pullSlots chan struct{}
}

// New returns the API over a daemon client.
func New(d messages.DaemonClient) *API {
	a := &API{d: d, mux: http.NewServeMux(), Poll: 100 * time.Millisecond,
		eventSlots: make(chan struct{}, maxEventStreams), logSlots: make(chan struct{}, maxLogStreams),
		pullSlots: make(chan struct{}, maxPulls)}
	m := a.mux
	m.HandleFunc("GET /api/node", a.node)
	m.HandleFunc("GET /api/services", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return a.d.List(ctx, &messages.ListServicesRequest{})
	}))
	m.HandleFunc("POST /api/services/pull", a.pull)
	m.HandleFunc("GET /api/services/{name}", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return a.d.Inspect(ctx, &messages.InspectService{Name: r.PathValue("name")})
	}))
	m.HandleFunc("POST /api/services/{name}/start", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return a.d.Start(ctx, &messages.StartService{Name: r.PathValue("name")})
	}))
	m.HandleFunc("POST /api/services/{name}/stop", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return a.d.Stop(ctx, &messages.StopService{Name: r.PathValue("name")})
	}))
	m.HandleFunc("POST /api/services/{name}/remove", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return a.d.Remove(ctx, &messages.RemoveService{Name: r.PathValue("name")})
	}))
	m.HandleFunc("GET /api/services/{name}/logs", a.logs)
	m.HandleFunc("GET /api/devices", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return a.d.ListDevices(ctx, &messages.DeviceListRequest{})
	}))
	m.HandleFunc("POST /api/devices", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		var req messages.DeviceAdd
		if err := readJSON(r, &req); err != nil {
			return nil, err
		}
		return a.d.AddDevice(ctx, &req)
	}))
	m.HandleFunc("POST /api/devices/{device}/rename", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		var req messages.DeviceRename
		if err := readJSON(r, &req); err != nil {
			return nil, err
		}
		req.Device = r.PathValue("device")
		return a.d.RenameDevice(ctx, &req)
	}))
	m.HandleFunc("POST /api/devices/{device}/trust", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		var req messages.DeviceTrust
		if err := readJSON(r, &req); err != nil {
			return nil, err
		}
		req.Device = r.PathValue("device")
		return a.d.TrustDevice(ctx, &req)
	}))
	m.HandleFunc("POST /api/devices/{device}/untrust", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return a.d.UntrustDevice(ctx, &messages.DeviceUntrust{Device: r.PathValue("device")})
	}))
	m.HandleFunc("POST /api/devices/{device}/remove", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return a.d.RemoveDevice(ctx, &messages.DeviceRemove{Device: r.PathValue("device")})
	}))
	m.HandleFunc("GET /api/devices/{device}/catalog", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		env, err := a.remoteOne(ctx, r.PathValue("device"), &messages.Envelope{Body: &messages.Envelope_Catalog{Catalog: &messages.CatalogRequest{}}})
		if err != nil {
			return nil, err
		}
		return env.GetCatalogList(), nil
	}))
	m.HandleFunc("GET /api/access", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return a.d.ListAccess(ctx, &messages.AccessListRequest{Device: r.URL.Query().Get("device")})
	}))
	m.HandleFunc("POST /api/access/attach", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		var req messages.AccessAttach
		if err := readJSON(r, &req); err != nil {
			return nil, err
		}
		return a.d.Attach(ctx, &req)
	}))
	m.HandleFunc("POST /api/access/detach", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		var req messages.AccessDetach
		if err := readJSON(r, &req); err != nil {
			return nil, err
		}
		return a.d.Detach(ctx, &req)
	}))
	// Every device's services at once; ?refresh=1 dials devices not
	// connected now (`fungi service list --all-devices --refresh`).
	m.HandleFunc("GET /api/overview", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return a.d.AllDeviceServices(ctx, &messages.DeviceServicesRequest{Refresh: r.URL.Query().Get("refresh") == "1"})
	}))
	m.HandleFunc("GET /api/connections", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return a.d.Connections(ctx, &messages.ConnectionListRequest{})
	}))
	a.routePairing(m)
	m.HandleFunc("GET /api/events", a.events)
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API route: "+r.Method+" "+r.URL.Path)
	})
	return a
}

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

var marshal = protojson.MarshalOptions{EmitUnpopulated: true}

func call(a *API, f func(ctx context.Context, r *http.Request) (proto.Message, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
		defer cancel()
		m, err := f(ctx, r)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeProto(w, m)
	}
}

func writeProto(w http.ResponseWriter, m proto.Message) {
	data, err := marshal.Marshal(m)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(data)
}

// writeErr answers with the daemon's own message, the text the CLI prints.
func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	msg := err.Error()
	if s, ok := status.FromError(err); ok {
		msg = s.Message()
		switch s.Code() {
		case codes.NotFound:
			code = http.StatusNotFound
		case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
			code = http.StatusBadRequest
		case codes.AlreadyExists, codes.Aborted:
			code = http.StatusConflict
		case codes.PermissionDenied:
			code = http.StatusForbidden
		case codes.Unavailable, codes.DeadlineExceeded:
			code = http.StatusServiceUnavailable
		}
	}
	var be badRequest
	if errors.As(err, &be) {
		code = http.StatusBadRequest
	}
	writeError(w, code, msg)
}

type badRequest struct{ error }

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func readJSON(r *http.Request, m proto.Message) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return badRequest{err}
	}
	if len(data) > maxJSONBody {
		return badRequest{fmt.Errorf("request body over %d bytes", maxJSONBody)}
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(data, m); err != nil {
		return badRequest{fmt.Errorf("request body: %v", err)}
	}
	return nil
}

func (a *API) node(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	info, err := a.d.Info(ctx, &messages.InfoRequest{})
	if err != nil {
		writeErr(w, err)
		return
	}
	rt, err := a.d.Runtimes(ctx, &messages.RuntimesRequest{})
	if err != nil {
		writeErr(w, err)
		return
	}
	i, _ := marshal.Marshal(info)
	rr, _ := marshal.Marshal(rt)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, "{\"node\":%s,\"runtimes\":%s}", i, rr)
}

// remoteOne runs one request on a peer, as `fungi catalog list` does.
func (a *API) remoteOne(ctx context.Context, device string, req *messages.Envelope) (*messages.Envelope, error) {
	dev, err := a.d.ResolveDevice(ctx, &messages.DeviceResolve{Device: device})
	if err != nil {
		return nil, err
	}
	stream, err := a.d.Remote(ctx, &messages.RemoteRequest{Device: dev.PeerId, Request: req})
	if err != nil {
		return nil, err
	}
	var answer *messages.Envelope
	for {
		env, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if e := env.GetError(); e != nil {
			return nil, status.Error(codes.Unknown, e.Message)
		}
		answer = env
	}
	if answer == nil {
		return nil, errors.New("the peer sent no answer")
	}
	return answer, nil
}

// pull takes a multipart form: "manifest" (a file or pasted text) and,
// for a manifest with source.file, "artifact" (the file it names). The
// progress streams back as one JSON object a line; the last carries
// "service" or "error".
func (a *API) pull(w http.ResponseWriter, r *http.Request) {
	release, ok := takeSlot(w, a.pullSlots, fmt.Sprintf("%d uploads are already being pulled on this node, the most it takes at once; wait for one to finish", maxPulls))
	if !ok {
		return
	}
	defer release()
	r.Body = http.MaxBytesReader(w, r.Body, maxManifestBytes+maxArtifactBytes+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, http.StatusBadRequest, "send the manifest as a multipart form field \"manifest\": "+err.Error())
		return
	}
	req := &messages.PullServiceRequest{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "reading the upload: "+err.Error())
			return
		}
		var limit int64
		switch part.FormName() {
		case "manifest":
			limit = maxManifestBytes
		case "artifact":
			limit = maxArtifactBytes
		default:
			continue
		}
		data, err := io.ReadAll(io.LimitReader(part, limit+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, "reading the upload: "+err.Error())
			return
		}
		if int64(len(data)) > limit {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%s over %d MB", part.FormName(), limit>>20))
			return
		}
		if part.FormName() == "manifest" {
			req.ManifestYaml = data
		} else if len(data) > 0 {
			sum := sha256.Sum256(data)
			req.Artifact, req.ArtifactSha256 = data, hex.EncodeToString(sum[:])
		}
	}
	if len(strings.TrimSpace(string(req.ManifestYaml))) == 0 {
		writeError(w, http.StatusBadRequest, "no manifest: choose a manifest file or paste one")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Minute)
	defer cancel()
	stream, err := a.d.Pull(ctx, req)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	fl, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			msg := err.Error()
			if s, ok := status.FromError(err); ok {
				msg = s.Message()
			}
			enc.Encode(map[string]string{"error": msg})
			return
		}
		data, _ := marshal.Marshal(p)
		w.Write(append(data, '\n'))
		if fl != nil {
			fl.Flush()
		}
	}
}
