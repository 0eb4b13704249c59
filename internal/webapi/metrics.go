package webapi

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fungi-go/fungi/actors"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/wasm"
)

// The wasm runtime reports each request it serves through its
// RequestObserver hook, the access forwarders each connection through
// actors.AccessObserver; these count them. They are the process's: two
// nodes in one process (tests) share them.
var (
	wasmRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fungi_wasm_requests_total", Help: "HTTP requests served by wasm services, by status code.",
	}, []string{"service", "code"})
	wasmLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "fungi_wasm_request_duration_seconds", Help: "Time to serve an HTTP request in a wasm service (a fresh instance each).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
	}, []string{"service"})
	accessConns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fungi_access_connections_total", Help: "Connections made to an access entry's local port.",
	}, []string{"peer", "service"})
	accessBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fungi_access_bytes_total", Help: "Bytes moved through an access entry: sent to the peer's service, or received from it.",
	}, []string{"peer", "service", "direction"})
	accessOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fungi_access_open_connections", Help: "Connections open through an access entry now.",
	}, []string{"peer", "service"})
	hookOnce sync.Once
)

func hookWasm() {
	hookOnce.Do(func() {
		f := func(service string, status int, took time.Duration) {
			wasmRequests.WithLabelValues(service, strconv.Itoa(status)).Inc()
			wasmLatency.WithLabelValues(service).Observe(took.Seconds())
		}
		wasm.RequestObserver.Store(&f)
		a := func(peerID, serviceID string, delta int) {
			if delta > 0 {
				accessConns.WithLabelValues(peerID, serviceID).Inc()
			}
			accessOpen.WithLabelValues(peerID, serviceID).Add(float64(delta))
		}
		actors.AccessObserver.Store(&a)
		b := func(peerID, serviceID string, sent bool, n int) {
			direction := "received"
			if sent {
				direction = "sent"
			}
			accessBytes.WithLabelValues(peerID, serviceID, direction).Add(float64(n))
		}
		actors.AccessBytesObserver.Store(&b)
	})
}

// serviceStates are the states a service reports; each gets a series, at
// zero when no service is in it, so a dashboard sees the state exists.
var serviceStates = []string{"starting", "running", "stopping", "stopped", "failed"}

var (
	descServices     = prometheus.NewDesc("fungi_services", "Services on this node by state.", []string{"state"}, nil)
	descRestarts     = prometheus.NewDesc("fungi_service_restarts_total", "Restarts of a service by its restart policy.", []string{"service"}, nil)
	descPeerConns    = prometheus.NewDesc("fungi_peer_connections", "Open peer connections, direct or relayed.", []string{"path"}, nil)
	descRTT          = prometheus.NewDesc("fungi_peer_rtt_seconds", "Round-trip time of a peer connection.", []string{"peer", "alias", "path"}, nil)
	descReservations = prometheus.NewDesc("fungi_relay_reservations", "Relay reservations held (ok) or failing (error).", []string{"status"}, nil)
	descAccess       = prometheus.NewDesc("fungi_access_entries", "Access entries (local ports forwarded to peers' services).", nil, nil)
	descUp           = prometheus.NewDesc("fungi_daemon_up", "1 when the daemon answered this scrape's calls.", nil, nil)
)

// collector asks the daemon on each scrape; nothing is counted twice.
type collector struct{ d messages.DaemonClient }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descServices, descRestarts, descPeerConns, descRTT, descReservations, descAccess, descUp} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	up := 1.0
	if list, err := c.d.List(ctx, &messages.ListServicesRequest{}); err == nil {
		byState := map[string]float64{}
		for _, s := range serviceStates {
			byState[s] = 0
		}
		for _, s := range list.Services {
			byState[s.State]++
			ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(s.Restarts), s.Name)
		}
		for st, n := range byState {
			ch <- prometheus.MustNewConstMetric(descServices, prometheus.GaugeValue, n, st)
		}
	} else {
		up = 0
	}
	if conns, err := c.d.Connections(ctx, &messages.ConnectionListRequest{}); err == nil {
		n := map[string]float64{"direct": 0, "relayed": 0}
		for _, cn := range conns.Connections {
			path := "direct"
			if cn.Relayed {
				path = "relayed"
			}
			n[path]++
			if cn.RttMs > 0 {
				ch <- prometheus.MustNewConstMetric(descRTT, prometheus.GaugeValue, cn.RttMs/1000, cn.PeerId, cn.Alias, path)
			}
		}
		for p, v := range n {
			ch <- prometheus.MustNewConstMetric(descPeerConns, prometheus.GaugeValue, v, p)
		}
	} else {
		up = 0
	}
	if info, err := c.d.Info(ctx, &messages.InfoRequest{}); err == nil {
		n := map[string]float64{"ok": 0, "error": 0}
		for _, r := range info.RelayReservations {
			if r.Error != "" {
				n["error"]++
			} else {
				n["ok"]++
			}
		}
		for s, v := range n {
			ch <- prometheus.MustNewConstMetric(descReservations, prometheus.GaugeValue, v, s)
		}
	} else {
		up = 0
	}
	if acc, err := c.d.ListAccess(ctx, &messages.AccessListRequest{}); err == nil {
		ch <- prometheus.MustNewConstMetric(descAccess, prometheus.GaugeValue, float64(len(acc.Entries)))
	} else {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
}

// Metrics serves /metrics in the Prometheus text format: the node's
// series, asked of the daemon at scrape time, and the Go runtime's.
func Metrics(d messages.DaemonClient) http.Handler {
	reg := prometheus.NewRegistry()
	hookWasm()
	reg.MustRegister(collector{d}, wasmRequests, wasmLatency, accessConns, accessBytes, accessOpen, collectors.NewGoCollector())
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Timeout: 10 * time.Second})
}
