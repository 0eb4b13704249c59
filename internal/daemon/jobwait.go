package daemon

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/fungi-go/fungi/messages"
)

// jobWaitLimit bounds how long a start --wait follows one run: a job that
// runs longer is still running when the command gives up, and `fungi
// service logs -f` and `inspect` follow it from there.
const jobWaitLimit = 24 * time.Hour

// StartWait starts a service and streams what it writes to its log until
// the run ends, then the service as it ended (its exit code).
func (s *apiServer) StartWait(req *messages.StartService, stream messages.Daemon_StartWaitServer) error {
	if err := s.startWait(stream.Context(), req, stream.Send); err != nil {
		return apiError(err)
	}
	return nil
}

// startWait is StartWait for the CLI and for a peer: the log is read from
// where it ends now, so only this run's lines go out, and every line the
// run wrote is sent before the end.
func (s *apiServer) startWait(ctx context.Context, req *messages.StartService, send func(*messages.LogChunk) error) error {
	if _, err := s.node.InspectService(&messages.InspectService{Name: req.Name}, quickTimeout); err != nil {
		return err
	}
	f, err := os.OpenFile(s.home.ServiceLog(req.Name), os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	type result struct {
		info *messages.ServiceInfo
		err  error
	}
	ended := make(chan result, 1)
	go func() {
		info, err := s.node.StartService(&messages.StartService{Name: req.Name, Wait: true}, jobWaitLimit)
		ended <- result{info: info, err: err}
	}()
	buf := make([]byte, 32<<10)
	drain := func() error {
		for {
			n, err := f.Read(buf)
			if n > 0 {
				if err := send(&messages.LogChunk{Data: append([]byte(nil), buf[:n]...)}); err != nil {
					return err
				}
				continue
			}
			if err == nil || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-ended:
			// The service answers after it has logged the end, so the
			// file holds every line of the run now.
			if err := drain(); err != nil {
				return err
			}
			if r.err != nil {
				return r.err
			}
			return send(&messages.LogChunk{Ended: r.info})
		case <-tick.C:
			if err := drain(); err != nil {
				return err
			}
		}
	}
}
