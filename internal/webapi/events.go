package webapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/fungi-go/fungi/messages"
)

// Streams a page keeps open each hold a connection, a goroutine and a
// call to the daemon for as long as the page is open; these bound how
// many the node serves at once. One more is answered 429 with
// Retry-After.
const (
	// maxEventStreams bounds the pages following events; each polls the
	// daemon.
	maxEventStreams = 32
	// maxLogStreams bounds the logs followed; each holds a follow of the
	// log file in the daemon too.
	maxLogStreams = 32
	// maxPulls bounds the uploads pulled at once; each may hold a 256 MiB
	// artifact in memory.
	maxPulls = 2
	// retryAfterSeconds is what a refused stream is told to wait.
	retryAfterSeconds = "5"
)

// takeSlot takes one of slots, or answers 429 with Retry-After and a JSON
// error saying why and returns false. release gives the slot back.
func takeSlot(w http.ResponseWriter, slots chan struct{}, why string) (release func(), ok bool) {
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, true
	default:
		w.Header().Set("Retry-After", retryAfterSeconds)
		writeError(w, http.StatusTooManyRequests, why)
		return nil, false
	}
}

// events streams server-sent events: "services", "devices",
// "connections", "access" and "pending", each the whole list as the matching GET
// answers it, sent first at once and then whenever it changes.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	release, ok := takeSlot(w, a.eventSlots, fmt.Sprintf("%d dashboard pages already follow this node, the most it serves; close some and reload", maxEventStreams))
	if !ok {
		return
	}
	defer release()
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	sources := []struct {
		name string
		get  func(ctx context.Context) (proto.Message, error)
	}{
		{"services", func(ctx context.Context) (proto.Message, error) {
			return a.d.List(ctx, &messages.ListServicesRequest{})
		}},
		{"devices", func(ctx context.Context) (proto.Message, error) {
			return a.d.ListDevices(ctx, &messages.DeviceListRequest{})
		}},
		{"connections", func(ctx context.Context) (proto.Message, error) {
			return a.d.Connections(ctx, &messages.ConnectionListRequest{})
		}},
		{"access", func(ctx context.Context) (proto.Message, error) {
			return a.d.ListAccess(ctx, &messages.AccessListRequest{})
		}},
		{"pending", func(ctx context.Context) (proto.Message, error) {
			return a.d.ListPending(ctx, &messages.PendingRequest{})
		}},
	}
	last := make([][]byte, len(sources))
	tick := time.NewTicker(a.Poll)
	defer tick.Stop()
	keepalive := time.Now()
	for {
		sent := false
		for i, s := range sources {
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			m, err := s.get(ctx)
			cancel()
			if err != nil {
				if r.Context().Err() != nil {
					return
				}
				continue
			}
			data, _ := marshal.Marshal(m)
			if bytes.Equal(data, last[i]) {
				continue
			}
			last[i] = data
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", s.name, data)
			sent = true
		}
		if !sent && time.Since(keepalive) > 15*time.Second {
			fmt.Fprint(w, ": keepalive\n\n")
			sent = true
		}
		if sent {
			keepalive = time.Now()
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// logs streams a service's log as server-sent "log" events (each data a
// JSON string of one chunk), the last 200 lines first, then live. The
// slot is given back when the page goes away: its request's context ends,
// and with it the daemon's stream.
func (a *API) logs(w http.ResponseWriter, r *http.Request) {
	release, ok := takeSlot(w, a.logSlots, fmt.Sprintf("%d service logs are already followed on this node, the most it serves; close some log views and try again", maxLogStreams))
	if !ok {
		return
	}
	defer release()
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	stream, err := a.d.Logs(r.Context(), &messages.LogsRequest{Name: r.PathValue("name"), Tail: 200, Follow: true})
	if err != nil {
		writeErr(w, err)
		return
	}
	first, err := stream.Recv()
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	for chunk := first; ; {
		data, _ := json.Marshal(string(chunk.Data))
		fmt.Fprintf(w, "event: log\ndata: %s\n\n", data)
		fl.Flush()
		chunk, err = stream.Recv()
		if err != nil {
			return
		}
	}
}
