package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/fungi-go/fungi/messages"
)

// daemonClient is a connection to the node's API.
type daemonClient struct {
	messages.DaemonClient
	conn *grpc.ClientConn
}

// connect dials the daemon of the home. A missing or dead socket gets the
// message every command shares.
func (e *env) connect() (*daemonClient, error) {
	sock := e.home.SocketPath()
	probe, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("fungi daemon is not running (socket %s); start it with `fungi daemon`", sock)
	}
	probe.Close()
	conn, err := grpc.NewClient("unix://"+sock,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(512<<20)))
	if err != nil {
		return nil, err
	}
	return &daemonClient{DaemonClient: messages.NewDaemonClient(conn), conn: conn}, nil
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
