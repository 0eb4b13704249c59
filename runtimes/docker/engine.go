package docker

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/docker/go-connections/sockets"
)

// Bounds on what the engine sends. Every answer the client reads whole
// (inspect, list, version, errors) is a few KiB; a long-lived stream is
// bounded per message instead.
const (
	// maxEngineAnswer bounds an answer the client reads whole.
	maxEngineAnswer = 4 << 20
	// maxEventMessage bounds one message of the events stream.
	maxEventMessage = 64 << 10
)

// newEngineClient is the engine's API client, over a transport that bounds
// what the engine sends back (see boundedTransport).
func newEngineClient(endpoint string) (*client.Client, error) {
	hostURL, err := client.ParseHostURL(endpoint)
	if err != nil {
		return nil, err
	}
	// As the client's own default transport: few idle connections, closed
	// after a while, so a long-running daemon does not hoard them.
	base := &http.Transport{MaxIdleConns: 6, IdleConnTimeout: 30 * time.Second}
	if err := sockets.ConfigureTransport(base, hostURL.Scheme, hostURL.Host); err != nil {
		return nil, err
	}
	return client.NewClientWithOpts(
		client.WithHost(endpoint),
		client.WithHTTPClient(&http.Client{Transport: &boundedTransport{base: base}, CheckRedirect: client.CheckRedirect}),
		client.WithAPIVersionNegotiation(),
	)
}

// boundedTransport caps every answer from the engine: a streamed pull or
// log is bounded by its reader (pull lines, log frames), the events
// stream per message, anything else as a whole.
type boundedTransport struct {
	base http.RoundTripper
}

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	path := req.URL.Path
	switch {
	case strings.HasSuffix(path, "/logs"), strings.HasSuffix(path, "/images/create"):
	case strings.HasSuffix(path, "/events"):
		resp.Body = &lineBoundedBody{body: resp.Body, max: maxEventMessage, what: "an events message"}
	default:
		resp.Body = &sizeBoundedBody{body: resp.Body, left: maxEngineAnswer, what: req.Method + " " + path}
	}
	return resp, nil
}

// sizeBoundedBody fails a read once the answer passes its bound.
type sizeBoundedBody struct {
	body io.ReadCloser
	left int64
	what string
}

func (b *sizeBoundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("the engine's answer to %s is larger than %d MiB; is it a Docker engine?", b.what, maxEngineAnswer>>20)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.body.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *sizeBoundedBody) Close() error { return b.body.Close() }

// lineBoundedBody fails a read once a line (one JSON message of a stream)
// passes its bound.
type lineBoundedBody struct {
	body io.ReadCloser
	max  int
	line int
	what string
}

func (b *lineBoundedBody) Read(p []byte) (int, error) {
	if b.line > b.max {
		return 0, fmt.Errorf("the engine sent %s longer than %d KiB; is it a Docker engine?", b.what, b.max>>10)
	}
	n, err := b.body.Read(p)
	chunk := p[:n]
	for {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			b.line += len(chunk)
			break
		}
		if b.line+i > b.max {
			b.line += i
			break
		}
		b.line = 0
		chunk = chunk[i+1:]
	}
	return n, err
}

func (b *lineBoundedBody) Close() error { return b.body.Close() }
