package dialerr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// Real dial failures on loopback are told apart: a closed port, a port
// whose listener says nothing, and libp2p's texts as the daemon saw them.
func TestClassify(t *testing.T) {
	// A port nothing listens on: the kernel refuses.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	_, refused := net.DialTimeout("tcp", closed, 2*time.Second)
	if got := Classify(refused); got != Refused {
		t.Errorf("a closed port: %v classified %v, want Refused", refused, got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if got := Classify(fmt.Errorf("dial: %w", ctx.Err())); got != Timeout {
		t.Errorf("a deadline: classified %v, want Timeout", got)
	}
	for text, want := range map[string]Cause{
		// As libp2p words them (seen from a fungi daemon).
		"failed to dial: failed to dial 12D3KooWA: all dials failed\n  * [/ip4/127.0.0.1/tcp/47311] dial tcp4 127.0.0.1:47311: connect: connection refused": Refused,
		"connection failed":                                  NotTrusted,
		"failed to dial 12D3KooWA: dial backoff":             Backoff,
		"failed to dial: no addresses":                       NoAddress,
		"dial tcp4 10.9.9.9:4433: connect: no route to host": NoRoute,
		"something else entirely":                            Unknown,
	} {
		if got := Classify(errors.New(text)); got != want {
			t.Errorf("%q classified %v, want %v", text, got, want)
		}
	}
	if w := Words(refused); w == "" || Classify(refused) != Refused {
		t.Errorf("words %q", w)
	}
}
