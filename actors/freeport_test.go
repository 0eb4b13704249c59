package actors

import (
	"net"
	"strconv"
	"testing"
)

// Auto host ports come from below the ephemeral range, where no outgoing
// connection takes them between the pull and a start; one held by another
// service or by another program is never given.
func TestFreePortAvoidsEphemeralAndTakenPorts(t *testing.T) {
	low, high := autoPortRange()
	if low >= high {
		t.Fatalf("auto port range %d–%d is empty", low, high)
	}
	taken := map[int]string{}
	for i := range 200 {
		port, err := freePort(taken)
		if err != nil {
			t.Fatal(err)
		}
		if port < low || port >= high {
			t.Fatalf("pick %d: port %d outside %d–%d (the ephemeral range starts at %d)", i, port, low, high, high)
		}
		if _, dup := taken[port]; dup {
			t.Fatalf("pick %d: port %d was already assigned", i, port)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("pick %d: port %d is not free: %v", i, port, err)
		}
		ln.Close()
		taken[port] = "svc" + strconv.Itoa(i)
	}
}
