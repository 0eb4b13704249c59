package external

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"
)

// listensLocally reports whether a socket on this machine listens on port
// for loopback connections, read from the kernel's socket tables. A watch of
// a local target uses it instead of connecting, so a service such as sshd
// does not log a dropped connection every few seconds. known is false when
// the tables cannot be read; the caller then connects.
func listensLocally(port int) (up, known bool) {
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		known = true
		found := scanListeners(io.LimitReader(f, 64<<20), port)
		f.Close()
		if found {
			return true, true
		}
	}
	return false, known
}

// scanListeners reads one /proc/net/tcp{,6} table: a header line, then
// "sl local_address rem_address st ..." with addresses as hex IP:PORT and
// state 0A for LISTEN.
func scanListeners(r io.Reader, port int) bool {
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != "0A" {
			continue
		}
		ip, p, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(p, 16, 16)
		if err != nil || int(n) != port {
			continue
		}
		if reachableFromLoopback(ip) {
			return true
		}
	}
	return false
}

// reachableFromLoopback reports whether a listening address (hex, as the
// kernel writes it) accepts connections to 127.0.0.1 or ::1: the wildcard
// or a loopback address.
func reachableFromLoopback(hexIP string) bool {
	switch hexIP {
	case "00000000", "00000000000000000000000000000000", // 0.0.0.0, ::
		"0100007F",                         // 127.0.0.1 (little-endian words)
		"00000000000000000000000001000000", // ::1
		"0000000000000000FFFF00000100007F": // ::ffff:127.0.0.1
		return true
	}
	// Any 127.x.y.z: the last byte of the little-endian word is 7F.
	return len(hexIP) == 8 && strings.HasSuffix(hexIP, "7F")
}
