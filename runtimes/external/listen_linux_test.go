package external

import (
	"net"
	"strings"
	"testing"
)

func TestListensLocallyReadsTheSocketTables(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		if up, known := listensLocally(port); !known || !up {
			t.Fatalf("%s listener on %d: up %v known %v", network, port, up, known)
		}
		ln.Close()
		if up, _ := listensLocally(port); up {
			t.Fatalf("%s: port %d still reported listening after close", network, port)
		}
	}
}

func TestScanListenersIgnoresOtherStatesAndAddresses(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:0050 0100007F:1234 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 1E01A8C0:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
`
	if !scanListeners(strings.NewReader(table), 22) {
		t.Error("127.0.0.1:22 in LISTEN not found")
	}
	if scanListeners(strings.NewReader(table), 80) {
		t.Error("an established connection counted as a listener")
	}
	if scanListeners(strings.NewReader(table), 8080) {
		t.Error("a listener on 192.168.1.30 only counted as reachable from loopback")
	}
}
