package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

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
func (e *env) withDaemon(f func(ctx context.Context, c *daemonClient) error) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	return f(context.Background(), c)
}
