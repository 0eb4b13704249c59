package transport

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The interface watch sees an address come and go, in a network namespace
// of its own, and names the address that went away.
func TestWatchNetSeesAnAddressGo(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("FUNGI_REQUIRE_NETNS") == "1" {
			t.Fatal("FUNGI_REQUIRE_NETNS=1 but this test is not root")
		}
		t.Skip("needs root to build a network namespace")
	}
	ns := fmt.Sprintf("fw%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	ip("-n", ns, "link", "set", "d0", "up")

	// The netlink socket belongs to the namespace of the thread that opens
	// it; the goroutines that read it may run anywhere.
	type opened struct {
		events <-chan netChange
		stop   func()
		err    error
	}
	res := make(chan opened, 1)
	go func() {
		runtime.LockOSThread() // setns applies to this thread; it dies with it
		f, err := os.Open("/var/run/netns/" + ns)
		if err == nil {
			err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
			f.Close()
		}
		if err != nil {
			res <- opened{err: err}
			return
		}
		ev, stop, err := watchNet()
		res <- opened{ev, stop, err}
	}()
	o := <-res
	if o.err != nil {
		t.Fatal(o.err)
	}
	defer o.stop()
	next := func(what string) netChange {
		t.Helper()
		select {
		case ch := <-o.events:
			return ch
		case <-time.After(10 * time.Second):
			t.Fatalf("no change reported within 10 s after %s", what)
			return netChange{}
		}
	}

	ip("-n", ns, "addr", "add", "10.77.0.2/24", "dev", "d0")
	if ch := next("an address was added"); len(ch.lost) != 0 {
		t.Fatalf("an added address reported lost: %v", ch.lost)
	}
	ip("-n", ns, "addr", "del", "10.77.0.2/24", "dev", "d0")
	if ch := next("an address was removed"); !ch.lost["10.77.0.2"] {
		t.Fatalf("the removed address is not reported lost: %v", ch.lost)
	}
}
