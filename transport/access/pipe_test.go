package access_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
	"github.com/fungi-go/fungi/transport/transporttest"
)

// A service that answers an upload before reading it, then stops reading:
// either it keeps its connection open, or it closes it. Both ends of every
// bridge must go, on the using node and on the serving node, whatever the
// client does; before, the copy towards the peer blocked in a stream write
// forever (goroutines, fds and streams kept until restart).
func TestPipeFreesBridgesWhenServiceAnswersBeforeReadingUpload(t *testing.T) {
	for _, serviceCloses := range []bool{false, true} {
		t.Run(fmt.Sprintf("serviceCloses=%v", serviceCloses), func(t *testing.T) {
			access.ShortPipeTimers(t)
			client, server, gate := trustedPair(t, "access")
			var mu sync.Mutex
			var kept []net.Conn
			svc, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				svc.Close()
				mu.Lock()
				for _, c := range kept {
					c.Close()
				}
				mu.Unlock()
			})
			go func() {
				for {
					c, err := svc.Accept()
					if err != nil {
						return
					}
					// Reads the request line only, answers, ends its writing.
					bufio.NewReader(c).ReadString('\n')
					io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
					c.(*net.TCPConn).CloseWrite()
					if serviceCloses {
						c.Close()
						continue
					}
					mu.Lock()
					kept = append(kept, c) // open, never read again
					mu.Unlock()
				}
			}()
			access.Serve(server, gate, func(peer.ID, *messages.AccessHeader) (string, error) { return svc.Addr().String(), nil }, t.Logf)
			entry := transporttest.ForwardLocally(t, client, server.ID(), &messages.AccessHeader{ServiceId: "svc", Port: "http"})
			upload := func() error {
				c, err := net.Dial("tcp", entry)
				if err != nil {
					return err
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				io.WriteString(c, "PUT /files/big HTTP/1.1\r\nHost: x\r\nContent-Length: 33554432\r\n\r\n")
				go c.Write(make([]byte, 32<<20)) // blocks once nobody reads; ends with the close
				status, err := bufio.NewReader(c).ReadString('\n')
				if err != nil || !strings.Contains(status, "413") {
					return fmt.Errorf("answer %q, %v", status, err)
				}
				return nil
			}
			if err := upload(); err != nil { // warm: connection, identify, buffers
				t.Fatal(err)
			}
			base := transporttest.TakeBaseline()
			mu.Lock()
			base.FDs -= len(kept) // counted in keptFDs
			mu.Unlock()
			const n = 20
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Add(1)
				go func() { defer wg.Done(); errs <- upload() }()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			base.BackTo(t, "every bridge freed on both nodes", func() int {
				mu.Lock()
				defer mu.Unlock()
				return len(kept)
			})
		})
	}
}

// deadlineCounter is a TCP end of a bridge that counts the write
// deadlines the bridge sets on it.
type deadlineCounter struct {
	*net.TCPConn
	mu   sync.Mutex
	sets int
}

func (d *deadlineCounter) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	d.sets++
	d.mu.Unlock()
	return d.TCPConn.SetWriteDeadline(t)
}

// tcpPair is both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dialed, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accepted, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dialed.Close(); accepted.Close() })
	return dialed.(*net.TCPConn), accepted.(*net.TCPConn)
}

// A bridge moves its write deadline once per half of pipeWriteStall, not
// at every write: a deadline per write cost a timer each (on a yamux
// stream a new one), on every message of a kept connection.
func TestPipeSetsWriteDeadlinesOncePerHalfStall(t *testing.T) {
	client, aEnd := tcpPair(t)
	bEnd, service := tcpPair(t)
	a, b := &deadlineCounter{TCPConn: aEnd}, &deadlineCounter{TCPConn: bEnd}
	done := make(chan struct{})
	go func() { defer close(done); access.Pipe(a, b) }()
	const messages = 500
	msg, got := []byte("ping"), make([]byte, 4)
	for i := range messages {
		if _, err := client.Write(msg); err != nil {
			t.Fatal(err)
		}
		service.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(service, got); err != nil {
			t.Fatalf("message %d through the bridge: %v", i, err)
		}
		if _, err := service.Write(got); err != nil {
			t.Fatal(err)
		}
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(client, got); err != nil {
			t.Fatalf("answer %d through the bridge: %v", i, err)
		}
	}
	client.CloseWrite()
	service.CloseWrite()
	<-done
	for name, end := range map[string]*deadlineCounter{"towards the service": b, "towards the client": a} {
		end.mu.Lock()
		sets := end.sets
		end.mu.Unlock()
		if sets > 2 {
			t.Errorf("%s: %d write deadlines set for %d writes, want at most 2", name, sets, messages)
		}
	}
}
