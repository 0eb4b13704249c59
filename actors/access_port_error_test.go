package actors

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestLocalPortErrorSaysTheCause(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := held.Addr().(*net.TCPAddr).Port
	_, inUse := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if got := localPortError(port, "http", inUse).Error(); !strings.Contains(got, "in use by another program") {
		t.Errorf("port held by another listener: %s", got)
	}
	// Root may open any port, so the refusal a normal user gets is built.
	denied := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}
	got := localPortError(80, "http", denied).Error()
	if strings.Contains(got, "in use") || !strings.Contains(got, "needs privileges") {
		t.Errorf("permission denied is reported as %q", got)
	}
}
