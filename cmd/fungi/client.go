package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/fungi-go/fungi/internal/apisock"
	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/messages"
)

// daemonClient is a connection to the node's API.
type daemonClient struct {
	messages.DaemonClient
	conn *grpc.ClientConn
}

// socketDialTimeout bounds the first contact with the daemon; a local
// socket answers at once unless the daemon is stuck.
const socketDialTimeout = 2 * time.Second

// connect dials the daemon of the home. Every command shares the messages
// for a daemon that is not there or cannot be reached.
func (e *env) connect() (*daemonClient, error) {
	sock := apisock.Address(e.home.Dir)
	ctx, cancel := context.WithTimeout(context.Background(), socketDialTimeout)
	probe, err := apisock.DialContext(ctx, sock)
	cancel()
	if err != nil {
		return nil, e.dialError(sock, err)
	}
	probe.Close()
	// The endpoint is a Unix socket or, on Windows, a named pipe; gRPC
	// reaches either through the same dialer.
	conn, err := grpc.NewClient("passthrough:///fungi-daemon",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return apisock.DialContext(ctx, sock) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(512<<20)))
	if err != nil {
		return nil, err
	}
	return &daemonClient{DaemonClient: messages.NewDaemonClient(conn), conn: conn}, nil
}

// dialError says why the socket did not answer. Only a missing socket or a
// refused connection means no daemon runs; a socket this user may not open
// belongs to a daemon of someone else, and starting another would not help.
func (e *env) dialError(sock string, err error) error {
	start := e.daemonCommand()
	switch {
	case errors.Is(err, fs.ErrPermission):
		return permissionError(sock)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("fungi daemon is not running (socket %s); start it with `%s`", sock, start)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("the fungi daemon did not answer on socket %s within %s; if it is stuck, restart it with `%s`", sock, socketDialTimeout, e.restartCommand())
	default:
		return fmt.Errorf("fungi daemon is not running (socket %s: %v); start it with `%s`", sock, err, start)
	}
}

// permissionError names whose socket it is and its mode, or the folder on
// the way that this user may not enter.
func permissionError(sock string) error {
	me := describeUser(os.Getuid())
	info, statErr := os.Stat(sock)
	if statErr != nil {
		return fmt.Errorf("permission denied reaching the fungi daemon's socket %s (%v): you (%s) may not enter its folder %s; run the command as the user who owns that folder, or pass -f with your own node folder",
			sock, statErr, me, filepath.Dir(sock))
	}
	owner := "another user"
	if uid, ok := fileOwner(info); ok {
		owner = describeUser(uid)
	}
	return fmt.Errorf("permission denied on the fungi daemon's socket %s (owned by %s, mode %04o; you are %s): run the command as %s, or have that user fix the socket's permissions (it is 0600 on purpose: whoever opens it controls the node)",
		sock, owner, info.Mode().Perm(), me, owner)
}

func describeUser(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}

// daemonCommand is how to start the daemon of this home: the folder in use
// is repeated unless it is the default one.
func (e *env) daemonCommand() string {
	if def, err := filepath.Abs(home.Default()); err == nil && def == e.home.Dir {
		return "fungi daemon"
	}
	return "fungi -C " + shellQuote(e.home.Dir) + " daemon"
}

// restartCommand is how to restart the daemon of this home.
func (e *env) restartCommand() string {
	return strings.Replace(e.daemonCommand(), " daemon", " daemon restart", 1)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`&|;<>()*?[]{}~#!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (c *daemonClient) Close() error { return c.conn.Close() }

// withDaemon runs f with a client and a context that ends with the command.
// Its error may carry a peer's words, so it is made safe to print.
func (e *env) withDaemon(f func(ctx context.Context, c *daemonClient) error) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	return terminalSafeError(f(context.Background(), c))
}

// terminalSafeError is err with its text through terminalSafe, keeping a
// gRPC status code for whoever maps it.
func terminalSafeError(err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		msg := s.Message()
		if safe := terminalSafe(msg); safe != msg {
			return status.Error(s.Code(), safe)
		}
		return err
	}
	if msg := err.Error(); terminalSafe(msg) != msg {
		return errors.New(terminalSafe(msg))
	}
	return err
}
