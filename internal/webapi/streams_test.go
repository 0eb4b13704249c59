package webapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
)

// logDaemon is a gRPC daemon whose Logs sends one chunk and then follows
// until the caller goes away, counting the follows open; the rest of its
// API is unimplemented.
type logDaemon struct {
	messages.UnimplementedDaemonServer
	following atomic.Int32
}

func (d *logDaemon) Logs(req *messages.LogsRequest, stream grpc.ServerStreamingServer[messages.LogChunk]) error {
	d.following.Add(1)
	defer d.following.Add(-1)
	if err := stream.Send(&messages.LogChunk{Data: []byte("started " + req.Name + "\n")}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func (d *logDaemon) Pull(req *messages.PullServiceRequest, stream grpc.ServerStreamingServer[messages.PullProgress]) error {
	if err := stream.Send(&messages.PullProgress{Message: "pulling"}); err != nil {
		return err
	}
	<-stream.Context().Done() // a pull that takes long
	return nil
}

// serveAPI serves the API over a real gRPC connection to d, both on
// loopback.
func serveAPI(t *testing.T, d messages.DaemonServer) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	messages.RegisterDaemonServer(gs, d)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	srv := httptest.NewServer(New(messages.NewDaemonClient(conn)))
	t.Cleanup(srv.Close)
	return srv
}

// openStream GETs path and, when it is answered 200, reads up to the
// first event, leaving the stream open.
func openStream(t *testing.T, ctx context.Context, url string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "event: ") {
			t.Fatalf("first line of the stream: %q, %v", line, err)
		}
	}
	return resp
}

// refusedClearly checks resp is the 429 of a full node: Retry-After and
// a JSON error that says what is full.
func refusedClearly(t *testing.T, resp *http.Response, what string) {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("stream over the cap: %d, want 429", resp.StatusCode) // before reading: a stream never ends
	}
	var body struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body.Error, what) {
		t.Fatalf("stream over the cap: %d Retry-After %q error %q; want 429 with Retry-After and an error about %s",
			resp.StatusCode, resp.Header.Get("Retry-After"), body.Error, what)
	}
}

// At most maxLogStreams logs are followed at once: one more is answered
// 429 with Retry-After and a JSON error, and when a page following one
// goes away its slot (and the daemon's follow) is freed for the next.
func TestLogStreamsAreCapped(t *testing.T) {
	d := &logDaemon{}
	srv := serveAPI(t, d)
	url := srv.URL + "/api/services/web/logs"
	cancels := make([]context.CancelFunc, maxLogStreams)
	for i := range cancels {
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i] = cancel
		t.Cleanup(cancel)
		if resp := openStream(t, ctx, url); resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d within the cap: %d", i, resp.StatusCode)
		}
	}
	refusedClearly(t, openStream(t, context.Background(), url), "service logs are already followed")
	if n := d.following.Load(); n != maxLogStreams {
		t.Fatalf("the daemon follows %d logs, want %d (a refused stream must not reach it)", n, maxLogStreams)
	}
	cancels[0]() // the page goes away
	testutil.WaitFor(t, 10*time.Second, "the daemon's follow to end with its page", func() error {
		if n := d.following.Load(); n != maxLogStreams-1 {
			return fmt.Errorf("%d follows", n)
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	testutil.WaitFor(t, 10*time.Second, "a stream in the freed slot", func() error {
		resp := openStream(t, ctx, url)
		if resp.StatusCode != http.StatusOK {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return fmt.Errorf("got %d", resp.StatusCode)
		}
		return nil
	})
}

// The event stream has its cap too, answered the same way.
func TestEventStreamsAreCapped(t *testing.T) {
	srv := serveAPI(t, &logDaemon{})
	url := srv.URL + "/api/events"
	for i := 0; i < maxEventStreams; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("event stream %d within the cap: %d", i, resp.StatusCode)
		}
	}
	refusedClearly(t, openStream(t, context.Background(), url), "dashboard pages already follow")
}

// At most maxPulls uploads are pulled at once (each may hold a 256 MiB
// artifact in memory); one more is refused before its body is read.
func TestPullsAreCapped(t *testing.T) {
	srv := serveAPI(t, &logDaemon{})
	post := func(ctx context.Context) *http.Response {
		t.Helper()
		var body strings.Builder
		mw := multipart.NewWriter(&body)
		mw.WriteField("manifest", "apiVersion: fungi/v1\n")
		mw.Close()
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/api/services/pull", strings.NewReader(body.String()))
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i := 0; i < maxPulls; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		resp := post(ctx)
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if resp.StatusCode != http.StatusOK || !strings.Contains(line, "pulling") {
			t.Fatalf("pull %d within the cap: %d %q %v", i, resp.StatusCode, line, err)
		}
	}
	refusedClearly(t, post(context.Background()), "uploads are already being pulled")
}
