package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// The ageing rule: an address goes only after enough failed dials in a row,
// over long enough, and once the device answered elsewhere after it began
// failing; typed addresses take longer, and one the device still announces
// stays.
func TestAgeingRule(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	typed := "/ip4/192.0.2.1/tcp/4433"
	seen := "/ip4/192.0.2.2/tcp/4433"
	failing := func(count int, ago time.Duration) *addrFailures {
		return &addrFailures{Count: count, Since: now.Add(-ago)}
	}
	cases := []struct {
		name        string
		typedFail   *addrFailures
		seenFail    *addrFailures
		announced   bool // the device still announces the typed address
		reachedAgo  time.Duration
		wantTyped   bool
		wantDropped bool // the announced address
	}{
		{name: "no failures", reachedAgo: 0},
		{name: "announced address: enough failures over long enough, reached since",
			seenFail: failing(seenAgeing.Failures, seenAgeing.After), wantDropped: true},
		{name: "announced address: one failure short",
			seenFail: failing(seenAgeing.Failures-1, seenAgeing.After)},
		{name: "announced address: failing for too short a time",
			seenFail: failing(seenAgeing.Failures, seenAgeing.After-time.Second)},
		{name: "announced address: the device was not reached since it began failing (it is off)",
			seenFail: failing(seenAgeing.Failures, 2*seenAgeing.After), reachedAgo: 3 * seenAgeing.After},
		{name: "typed address: the announced rule is not enough",
			typedFail: failing(seenAgeing.Failures, seenAgeing.After)},
		{name: "typed address: enough failures over long enough, reached since",
			typedFail: failing(typedAgeing.Failures, typedAgeing.After), wantTyped: true},
		{name: "typed address: failing for too short a time",
			typedFail: failing(typedAgeing.Failures, typedAgeing.After-time.Minute)},
		{name: "typed address the device still announces stays",
			typedFail: failing(typedAgeing.Failures, 2*typedAgeing.After), announced: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &deviceRecord{Addrs: []string{typed + "/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"}, Seen: []string{seen}, Failing: map[string]*addrFailures{}}
			if c.announced {
				d.Seen = append(d.Seen, typed)
			}
			if c.typedFail != nil {
				d.Failing[typed] = c.typedFail
			}
			if c.seenFail != nil {
				d.Failing[seen] = c.seenFail
			}
			gotTyped, gotSeen := agedOut(d, now.Add(-c.reachedAgo), now)
			if (len(gotTyped) > 0) != c.wantTyped {
				t.Errorf("typed address dropped: %v, want %v", gotTyped, c.wantTyped)
			}
			if slices.Contains(gotSeen, seen) != c.wantDropped {
				t.Errorf("announced address dropped: %v, want %v", gotSeen, c.wantDropped)
			}
		})
	}
}

// Failures count only on addresses the book keeps, once per dial, and a
// success on an address forgets its failures; a /p2p suffix does not make
// another address.
func TestAddressFailuresCount(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	kept := "/ip4/192.0.2.1/tcp/4433"
	d := &deviceRecord{Addrs: []string{kept + "/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"}}
	if d.recordFailures([]string{"/ip4/192.0.2.9/tcp/1"}, t0) {
		t.Fatal("a failure on an address the book does not keep was counted")
	}
	d.recordFailures([]string{kept, kept}, t0)
	d.recordFailures([]string{kept}, t0.Add(time.Hour))
	f := d.Failing[kept]
	if f == nil || f.Count != 2 || !f.Since.Equal(t0) {
		t.Fatalf("failures = %+v, want 2 since %v", f, t0)
	}
	if !d.clearFailing(kept+"/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN") || d.Failing[kept] != nil {
		t.Fatalf("a success did not forget the failures: %+v", d.Failing)
	}
}

// The failed addresses come out of libp2p's dial error, wrapped as
// Connect wraps it; those cut short by cancellation are not failures.
func TestFailedAddrs(t *testing.T) {
	dead := ma.StringCast("/ip4/127.0.0.1/tcp/1")
	cut := ma.StringCast("/ip4/127.0.0.1/tcp/2")
	de := &swarm.DialError{DialErrors: []swarm.TransportError{
		{Address: dead, Cause: errors.New("connection refused")},
		{Address: cut, Cause: context.Canceled},
	}}
	got := failedAddrs(fmt.Errorf("%w; nor through the DHT: none", de))
	if !slices.Equal(got, []string{dead.String()}) {
		t.Fatalf("failedAddrs = %v, want [%s]", got, dead)
	}
	if failedAddrs(errors.New("no addresses")) != nil {
		t.Fatal("an error without a dial error named addresses")
	}
}
