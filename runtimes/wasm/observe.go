package wasm

import (
	"net/http"
	"sync/atomic"
	"time"
)

// RequestObserver, when set, is told of every HTTP request a wasm service
// served (core module or component): the service's name, the status sent
// and how long the request took. The dashboard's /metrics sets it; it must
// return at once.
var RequestObserver atomic.Pointer[func(service string, status int, took time.Duration)]

// observed wraps a service's handler so RequestObserver sees its requests.
func observed(service string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		obs := RequestObserver.Load()
		if obs == nil {
			h.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		h.ServeHTTP(rec, r)
		(*obs)(service, rec.status, time.Since(start))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
