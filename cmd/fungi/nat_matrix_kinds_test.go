package main

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"
)

// TestNATKinds checks each router kind of nat-testnet.sh with UDP probes
// from the node behind it to two hosts on the internet segment: whether
// the router keeps one external address:port whatever the destination
// (endpoint-independent mapping), and who may send to it: the host it
// sent to (always), another port of that host, another host, and any
// host to a port the node never sent from.
func TestNATKinds(t *testing.T) {
	if !netnsAvailable(t) {
		t.Skip("needs root, ip and iptables to build network namespaces")
	}
	want := map[string]natKindBehaviour{
		"none": {eim: true, kept: true, otherPort: true, otherHost: true, unsent: true},
		"eim":  {eim: true, kept: true, otherPort: true, otherHost: true},
		"apdf": {eim: true, kept: true},
		"sym":  {},
	}
	nft := natNFTAvailable(t)
	for _, pair := range [][2]string{{"eim", "apdf"}, {"sym", "none"}} {
		t.Run(pair[0]+"-"+pair[1], func(t *testing.T) {
			if pair[0] == "eim" && !nft {
				t.Skip("the eim router needs nft (Debian package nftables)")
			}
			prefix := natPrefix(t)
			natUp(t, prefix, pair[0], pair[1])
			// A second host on the internet segment.
			if out, err := exec.Command("ip", "-n", prefix+"pub", "addr", "add", "11.99.0.9/24", "dev", "br0").CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			for i, kind := range pair {
				home := []string{"a", "b"}[i]
				got, err := natProbe(prefix, home, kind, i+1)
				if err != nil {
					t.Fatalf("home %s (%s): %v", home, kind, err)
				}
				t.Logf("%s: %+v", kind, got)
				if kind == "sym" {
					got.kept = false // a random port may be the node's own
				}
				if got != want[kind] {
					t.Errorf("router %s behaves as %+v, want %+v", kind, got, want[kind])
				}
			}
		})
	}
}

// natKindBehaviour is what the probes saw of a router.
type natKindBehaviour struct {
	eim       bool // one external address:port for two destinations
	kept      bool // the external port is the node's own
	otherPort bool // the host the node sent to reaches it from another port
	otherHost bool // a host the node never sent to reaches it
	unsent    bool // a port the node never sent from is reachable
}

// natProbe probes the router of home (a or b, the nth) from inside.
func natProbe(prefix, home, kind string, n int) (natKindBehaviour, error) {
	var got natKindBehaviour
	udp := func(ns, addr string) (c *net.UDPConn, err error) {
		err = inNetns(ns, func() error {
			c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netipMust(addr)))
			return err
		})
		return c, err
	}
	inside, err := udp(prefix+"h"+home, "0.0.0.0:5000")
	if err != nil {
		return got, err
	}
	defer inside.Close()
	unsent, err := udp(prefix+"h"+home, "0.0.0.0:5001")
	if err != nil {
		return got, err
	}
	defer unsent.Close()
	var out [4]*net.UDPConn // x, y (another host), z (x's host, another port), w (y's host)
	for i, addr := range []string{"11.99.0.1:6000", "11.99.0.9:6001", "11.99.0.1:6002", "11.99.0.9:6003"} {
		if out[i], err = udp(prefix+"pub", addr); err != nil {
			return got, err
		}
		defer out[i].Close()
	}
	x, y, z, w := out[0], out[1], out[2], out[3]

	// The mapping: what x and y see as the node's address.
	seen := func(c *net.UDPConn) (*net.UDPAddr, error) {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 64)
		_, from, err := c.ReadFromUDP(buf)
		return from, err
	}
	inside.WriteTo([]byte("to x"), x.LocalAddr())
	mx, err := seen(x)
	if err != nil {
		return got, fmt.Errorf("x heard nothing from the node: %w", err)
	}
	inside.WriteTo([]byte("to y"), y.LocalAddr())
	my, err := seen(y)
	if err != nil {
		return got, fmt.Errorf("y heard nothing from the node: %w", err)
	}
	got.eim = mx.String() == my.String()
	got.kept = mx.Port == 5000
	wantIP := "11.99.0." + fmt.Sprint(n+1) // the router's wan address
	if kind == "none" {
		wantIP = fmt.Sprintf("11.99.%d.2", n)
	}
	if mx.IP.String() != wantIP {
		return got, fmt.Errorf("x saw the node as %s, want address %s", mx, wantIP)
	}

	// The filter: z and w send to the mapping x saw, and to the port the
	// node never sent from; then x, whose answer always passes, sends a
	// last one. What arrives before it, or within a moment after (two
	// paths need not keep order), got through.
	z.WriteTo([]byte("z"), mx)
	w.WriteTo([]byte("w"), mx)
	w.WriteTo([]byte("u"), &net.UDPAddr{IP: mx.IP, Port: 5001})
	x.WriteTo([]byte("x"), mx)
	heard := map[string]bool{}
	read := func(c *net.UDPConn, until string, after time.Duration) error {
		deadline := time.Now().Add(2 * time.Second)
		if until == "" {
			deadline = time.Now().Add(after)
		}
		for {
			c.SetReadDeadline(deadline)
			buf := make([]byte, 64)
			k, _, err := c.ReadFromUDP(buf)
			if err != nil {
				if until == "" || heard[until] {
					return nil // the moment after is over
				}
				return fmt.Errorf("the answer from x never came: %w", err)
			}
			heard[string(buf[:k])] = true
			if string(buf[:k]) == until {
				deadline = time.Now().Add(after)
			}
		}
	}
	// u left before x: once x is in, a moment is enough for u too.
	if err := read(inside, "x", 300*time.Millisecond); err != nil {
		return got, err
	}
	if err := read(unsent, "", 300*time.Millisecond); err != nil {
		return got, err
	}
	got.otherPort, got.otherHost, got.unsent = heard["z"], heard["w"], heard["u"]
	return got, nil
}

func netipMust(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
