package webapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"google.golang.org/protobuf/proto"

	"github.com/fungi-go/fungi/internal/config"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// routePairing adds what the CLI does for a new device and a new service
// (issue 25): invite and join, the pending devices with accept and
// dismiss, publishing a port that already serves, and the live settings.
func (a *API) routePairing(m *http.ServeMux) {
	m.HandleFunc("POST /api/devices/invite", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		var req messages.InviteRequest
		if err := readJSON(r, &req); err != nil {
			return nil, err
		}
		return a.d.InviteDevice(ctx, &req)
	}))
	m.HandleFunc("POST /api/devices/join", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		var req messages.JoinRequest
		if err := readJSON(r, &req); err != nil {
			return nil, err
		}
		return a.d.JoinDevice(ctx, &req)
	}))
	m.HandleFunc("GET /api/devices/pending", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return a.d.ListPending(ctx, &messages.PendingRequest{})
	}))
	m.HandleFunc("POST /api/devices/pending/{peer}/accept", call(a, a.accept))
	m.HandleFunc("POST /api/devices/pending/{peer}/dismiss", call(a, func(ctx context.Context, r *http.Request) (proto.Message, error) {
		return a.d.DismissPending(ctx, &messages.PendingDismiss{PeerId: r.PathValue("peer")})
	}))
	m.HandleFunc("POST /api/services/expose", call(a, a.expose))
	m.HandleFunc("GET /api/config", a.configGet)
	m.HandleFunc("POST /api/config", a.configSet)
}

// acceptRequest is the body of an accept: the role and an alias.
type acceptRequest struct {
	Role  string `json:"role"`
	Alias string `json:"alias"`
}

// accept lets a pending device in, as `device add` and `device trust` do:
// into the address book (with the address it came from, so this node can
// dial it back), then trusted with the role chosen.
func (a *API) accept(ctx context.Context, r *http.Request) (proto.Message, error) {
	var req acceptRequest
	if err := readPlainJSON(r, &req); err != nil {
		return nil, err
	}
	if req.Alias == "" {
		return nil, badRequest{errors.New("give the device an alias (lower-case letters, digits and hyphens) before accepting it")}
	}
	id := r.PathValue("peer")
	pending, err := a.d.ListPending(ctx, &messages.PendingRequest{})
	if err != nil {
		return nil, err
	}
	var addrs []string
	found := false
	for _, p := range pending.Devices {
		if p.PeerId == id {
			found = true
			if p.Addr != "" {
				addrs = []string{p.Addr}
			}
		}
	}
	if !found {
		return nil, badRequest{fmt.Errorf("%s is not pending any more; reload the page", id)}
	}
	if _, err := a.d.AddDevice(ctx, &messages.DeviceAdd{PeerId: id, Alias: req.Alias, Addrs: addrs}); err != nil {
		return nil, err
	}
	return a.d.TrustDevice(ctx, &messages.DeviceTrust{Device: id, Role: req.Role})
}

// exposeRequest is the body of an expose, the flags of `service expose`.
type exposeRequest struct {
	Name        string `json:"name"`
	Host        string `json:"host"`
	Port        int    `json:"port"`
	Usage       string `json:"usage"`
	DisplayName string `json:"displayName"`
}

// expose publishes a port that already serves, as `fungi service expose`
// does: the manifest written, pulled and started.
func (a *API) expose(ctx context.Context, r *http.Request) (proto.Message, error) {
	var req exposeRequest
	if err := readPlainJSON(r, &req); err != nil {
		return nil, err
	}
	raw, err := manifest.External(manifest.ExternalOptions{Name: req.Name, Host: req.Host, Port: req.Port, Usage: req.Usage, DisplayName: req.DisplayName})
	if err != nil {
		return nil, badRequest{err}
	}
	stream, err := a.d.Pull(ctx, &messages.PullServiceRequest{ManifestYaml: raw})
	if err != nil {
		return nil, err
	}
	var info *messages.ServiceInfo
	for info == nil {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the daemon ended the pull without a result")
		}
		if err != nil {
			return nil, err
		}
		info = p.Service
	}
	return a.d.Start(ctx, &messages.StartService{Name: info.Name})
}

// configKey is one key of the config form.
type configKey struct {
	Key   string   `json:"key"`
	Value []string `json:"value"`
	List  bool     `json:"list"`
	Bool  bool     `json:"bool"`
	// When says when a change applies ("at once", "for later pulls…").
	When string `json:"when"`
}

// liveHome opens the daemon's home: the dashboard runs in the daemon, and
// edits config.yaml there as `fungi config set` does.
func (a *API) liveHome(ctx context.Context) (*home.Home, error) {
	info, err := a.d.Info(ctx, &messages.InfoRequest{})
	if err != nil {
		return nil, err
	}
	return home.Open(info.FungiDir)
}

// configGet lists the keys a running daemon applies without a restart;
// the others stay with `fungi config set`.
func (a *API) configGet(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	h, err := a.liveHome(ctx)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := []configKey{}
	for _, k := range config.Keys {
		if !k.Live {
			continue
		}
		v, err := config.Get(h.ConfigPath(), k.Name)
		if err != nil {
			writeErr(w, err)
			return
		}
		out = append(out, configKey{Key: k.Name, Value: v, List: k.Kind == config.List, Bool: k.Kind == config.Bool, When: k.When})
	}
	writeAny(w, map[string]any{"keys": out})
}

type configSetRequest struct {
	Key   string   `json:"key"`
	Value []string `json:"value"`
}

// configSet saves one live key and has the daemon apply it.
func (a *API) configSet(w http.ResponseWriter, r *http.Request) {
	var req configSetRequest
	if err := readPlainJSON(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	k, err := config.Lookup(req.Key)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !k.Live {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s applies only %s; set it with `fungi config set %s …` and restart the daemon", k.Name, k.When, k.Name))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), callTimeout)
	defer cancel()
	h, err := a.liveHome(ctx)
	if err != nil {
		writeErr(w, err)
		return
	}
	if err := config.Set(h.ConfigPath(), req.Key, req.Value); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	reply, err := a.d.ReloadConfig(ctx, &messages.ConfigReloadRequest{})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "config.yaml is saved, but the daemon did not apply it: "+err.Error())
		return
	}
	v, _ := config.Get(h.ConfigPath(), req.Key)
	writeAny(w, map[string]any{"key": req.Key, "value": v, "applied": reply.Applied, "when": k.When})
}

func writeAny(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// readPlainJSON reads a small JSON body into a Go struct, unknown fields
// refused.
func readPlainJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxJSONBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest{fmt.Errorf("request body: %v", err)}
	}
	return nil
}
