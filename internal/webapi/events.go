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

// maxEventStreams bounds the pages following events at once; each polls
// the daemon.
const maxEventStreams = 32

// events streams server-sent events: "services", "devices",
// "connections" and "access", each the whole list as the matching GET
// answers it, sent first at once and then whenever it changes.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	select {
	case a.streams() <- struct{}{}:
		defer func() { <-a.streams() }()
	default:
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("over %d dashboard pages follow this node; close some", maxEventStreams))
		return
	}
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

var streamSlots = make(chan struct{}, maxEventStreams)

func (a *API) streams() chan struct{} { return streamSlots }

// logs streams a service's log as server-sent "log" events (each data a
// JSON string of one chunk), the last 200 lines first, then live.
func (a *API) logs(w http.ResponseWriter, r *http.Request) {
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
