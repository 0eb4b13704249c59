package sysmon

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
)

// echoEnv makes this test binary an echo server (TestMain): it prints its
// address and echoes one connection.
const echoEnv = "SYSMON_TEST_ECHO"

func TestMain(m *testing.M) {
	if os.Getenv(echoEnv) == "1" {
		echoOnce()
		return
	}
	os.Exit(m.Run())
}

func echoOnce() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		os.Exit(1)
	}
	io.Copy(c, c)
}

// echoServer starts this test binary as an echo server with godebug and
// returns a connection to it and its process ID.
func echoServer(t *testing.T, godebug string) (net.Conn, int) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), echoEnv+"=1", "GODEBUG="+godebug)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("echo server: %v", err)
	}
	c, err := net.DialTimeout("tcp", strings.TrimSpace(addr), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute))
	return c, cmd.Process.Pid
}

// switchesPerRoundTrip has an echo server started with godebug answer
// rounds round trips of 64 bytes, each after a round trip to each of
// others, so it goes idle between requests as a forwarder on a path of
// several processes does; it returns how many times its threads were
// switched out per round trip.
func switchesPerRoundTrip(t *testing.T, godebug string, others []net.Conn, rounds int) float64 {
	c, pid := echoServer(t, godebug)
	msg, back := make([]byte, 64), make([]byte, 64)
	roundTrip := func(c net.Conn) {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, back); err != nil {
			t.Fatal(err)
		}
	}
	round := func() {
		for _, o := range others {
			roundTrip(o)
		}
		roundTrip(c)
	}
	for range 100 { // past the start
		round()
	}
	before := threadSwitches(t, pid)
	for range rounds {
		round()
	}
	return float64(threadSwitches(t, pid)-before) / float64(rounds)
}

// threadSwitches is ThreadSwitches for a process that must be there.
func threadSwitches(t *testing.T, pid int) int {
	n, err := testutil.ThreadSwitches(pid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A process that goes idle between requests pays the runtime monitor's
// wake-up on each one, unless Setting keeps the monitor awake. If a Go
// release changes the monitor so this fails, the setting no longer helps:
// drop KeepAwake.
func TestSettingKeepsTheMonitorAwake(t *testing.T) {
	const rounds = 2000
	var others []net.Conn
	for range 3 {
		c, _ := echoServer(t, "")
		others = append(others, c)
	}
	// Other processes on a loaded machine (make test runs packages side
	// by side) take the cores the round trips wait for, and the monitor
	// then finds work often enough not to sleep deeply by default either:
	// one pair of measures once came out 1.86 against 1.47. A setting
	// that no longer helps loses every pair; noise does not.
	const pairs = 3
	var seen []string
	for range pairs {
		asleep := switchesPerRoundTrip(t, "", others, rounds)
		awake := switchesPerRoundTrip(t, Setting, others, rounds)
		t.Logf("thread switches per round trip: %.2f by default, %.2f with %s", asleep, awake, Setting)
		if awake <= 0.75*asleep {
			return
		}
		seen = append(seen, fmt.Sprintf("%.2f against %.2f", awake, asleep))
	}
	t.Fatalf("with %s the echo server's threads switched more than 0.75 times as often per round trip as by default in %d measures (%s): the setting no longer spares the monitor's wake-ups", Setting, pairs, strings.Join(seen, ", "))
}
