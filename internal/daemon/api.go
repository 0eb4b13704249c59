package daemon

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fungi-go/fungi/actors"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/version"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/external"
	"github.com/fungi-go/fungi/transport"
)

// Timeouts of the API's requests to the actor tree. A start includes a
// compile of a module that is not in the cache yet; a pull includes a
// download.
const (
	quickTimeout = 15 * time.Second
	startTimeout = 2 * time.Minute
	pullTimeout  = 30 * time.Minute
)

// apiServer is the CLI↔daemon API: each call becomes one message to the
// node's actors.
type apiServer struct {
	messages.UnimplementedDaemonServer
	home *home.Home
	node *actors.Node
	net  *transport.Network
	info func() *messages.NodeInfo
	// requestStop ends the daemon's run as SIGTERM does (Shutdown).
	requestStop func()
	// opts are the flags the daemon was started with (Shutdown reports
	// them for a restart).
	opts Options
	// dashboard is the dashboard's URL and state (Info).
	dashboard *dashboardState
	// names is the names port's URL pattern and state (Info).
	names *dashboardState
	// reloader applies config.yaml while the node runs.
	reloader *reloader
	// external checks an external service's target again before an
	// access stream connects to it.
	external *external.Provider
	// overview caches every device's service list for AllDeviceServices.
	overview *deviceOverview
}

func (s *apiServer) Info(context.Context, *messages.InfoRequest) (*messages.NodeInfo, error) {
	info := s.info()
	info.Version = version.Version
	info.FungiDir = s.home.Dir
	info.Pid = int32(os.Getpid())
	if s.dashboard != nil {
		info.Dashboard, info.DashboardState = s.dashboard.get()
	}
	if s.names != nil {
		info.Names, info.NamesState = s.names.get()
	}
	return info, nil
}

func (s *apiServer) Runtimes(context.Context, *messages.RuntimesRequest) (*messages.RuntimesResponse, error) {
	return s.runtimes(), nil
}

func (s *apiServer) runtimes() *messages.RuntimesResponse {
	out := &messages.RuntimesResponse{}
	names := s.node.RuntimeNames()
	sort.Strings(names)
	for _, name := range names {
		c, err := s.node.RuntimeCapability(name, quickTimeout)
		if err != nil {
			c = &messages.RuntimeCapability{Name: name, Detail: err.Error()}
		}
		out.Runtimes = append(out.Runtimes, c)
	}
	return out
}

func (s *apiServer) Pull(req *messages.PullServiceRequest, stream messages.Daemon_PullServer) error {
	var mu sync.Mutex
	progress := func(p *messages.PullProgress) {
		mu.Lock()
		defer mu.Unlock()
		stream.Send(p)
	}
	info, err := s.node.PullService(req, progress, pullTimeout)
	if err != nil {
		return apiError(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return stream.Send(&messages.PullProgress{Message: "pulled", Service: info})
}

func (s *apiServer) List(context.Context, *messages.ListServicesRequest) (*messages.ServiceList, error) {
	return apiAnswer(s.node.ListServices(quickTimeout))
}

func (s *apiServer) Start(_ context.Context, req *messages.StartService) (*messages.ServiceInfo, error) {
	return apiAnswer(s.node.StartService(req, startTimeout))
}

func (s *apiServer) Stop(_ context.Context, req *messages.StopService) (*messages.ServiceInfo, error) {
	return apiAnswer(s.node.StopService(req, startTimeout))
}

func (s *apiServer) Inspect(_ context.Context, req *messages.InspectService) (*messages.ServiceInfo, error) {
	return apiAnswer(s.node.InspectService(req, quickTimeout))
}

func (s *apiServer) Remove(_ context.Context, req *messages.RemoveService) (*messages.RemoveServiceResponse, error) {
	return apiAnswer(s.node.RemoveService(req, startTimeout)) // longer than the registry's own bound
}

// Logs streams a service's log file: the last Tail lines, then, with Follow,
// what is appended until the client goes away.
func (s *apiServer) Logs(req *messages.LogsRequest, stream messages.Daemon_LogsServer) error {
	return s.streamLogs(stream.Context(), req, stream.Send)
}

func (s *apiServer) streamLogs(ctx context.Context, req *messages.LogsRequest, send func(*messages.LogChunk) error) error {
	if _, err := s.node.InspectService(&messages.InspectService{Name: req.Name}, quickTimeout); err != nil {
		return apiError(err)
	}
	f, err := os.Open(s.home.ServiceLog(req.Name))
	if errors.Is(err, os.ErrNotExist) {
		if !req.Follow {
			return nil
		}
		f, err = waitForFile(ctx, s.home.ServiceLog(req.Name))
	}
	if err != nil {
		return apiError(err)
	}
	defer f.Close()
	if err := sendTail(f, req.Tail, send); err != nil {
		return err
	}
	if !req.Follow {
		return nil
	}
	buf := make([]byte, 32<<10)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if err := send(&messages.LogChunk{Data: append([]byte(nil), buf[:n]...)}); err != nil {
				return err
			}
			continue
		}
		if err != nil && err != io.EOF {
			return apiError(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func waitForFile(ctx context.Context, path string) (*os.File, error) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		f, err := os.Open(path)
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// sendTail sends the last tail lines of f (all when tail < 0) and leaves f
// at its end.
func sendTail(f *os.File, tail int32, send func(*messages.LogChunk) error) error {
	var lines []string
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			lines = append(lines, line)
			if tail >= 0 && len(lines) > int(tail) {
				lines = lines[1:]
			}
		}
		if err != nil {
			break
		}
	}
	for start := 0; start < len(lines); start += 256 {
		end := min(start+256, len(lines))
		var chunk []byte
		for _, l := range lines[start:end] {
			chunk = append(chunk, l...)
		}
		if err := send(&messages.LogChunk{Data: chunk}); err != nil {
			return err
		}
	}
	return nil
}

// apiAnswer is an answer of the node for a gRPC client: res, or err as
// apiError makes it.
func apiAnswer[T any](res T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, apiError(err)
	}
	return res, nil
}

// apiError gives an actor's answer the gRPC status the CLI turns into an
// exit code and a message.
func apiError(err error) error {
	var ae *actors.Error
	if errors.As(err, &ae) {
		code := codes.Unknown
		switch ae.Kind {
		case actors.NotFound:
			code = codes.NotFound
		case actors.Invalid:
			code = codes.InvalidArgument
		case actors.Conflict:
			code = codes.FailedPrecondition
		}
		return status.Error(code, ae.Msg)
	}
	return status.Error(codes.Unknown, err.Error())
}
