package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/fungi-go/fungi/messages"
)

type pingCmd struct {
	deviceArg
	Count int32 `name:"count" short:"c" default:"4" help:"How many pings."`
	jsonFlag
}

func (c *pingCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		stream, err := d.Ping(ctx, &messages.PingRequest{Device: c.Device, Count: c.Count})
		if err != nil {
			return err
		}
		var results []*messages.PingResult
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			results = append(results, r)
			if !c.JSON {
				r := humanSafe(r)
				path := "direct"
				if r.Relayed {
					path = "relayed"
				}
				fmt.Fprintf(e.stdout, "seq=%d rtt=%.3f ms via %s (%s)\n", r.Seq, r.RttMs, r.RemoteAddr, path)
			}
		}
		if c.JSON {
			return printJSONList(e.stdout, results)
		}
		return nil
	})
}

type connectionCmd struct {
	List connectionListCmd `cmd:"" help:"List open connections to peers: direct or relayed, transport, RTT."`
}

type connectionListCmd struct{ jsonFlag }

func (c *connectionListCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		res, err := d.Connections(ctx, &messages.ConnectionListRequest{})
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSONList(e.stdout, res.Connections)
		}
		w := table(e.stdout)
		fmt.Fprintln(w, "PEER\tDIRECTION\tPATH\tTRANSPORT\tRTT\tADDRESS")
		for _, cn := range res.Connections {
			cn = humanSafe(cn)
			who := cn.Alias
			if who == "" {
				who = cn.PeerId
			}
			path := "direct"
			if cn.Relayed {
				path = "relayed"
			}
			rtt := "-"
			if cn.RttMs > 0 {
				rtt = fmt.Sprintf("%.3f ms", cn.RttMs)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", who, cn.Direction, path, cn.Transport, rtt, cn.RemoteAddr)
		}
		return w.Flush()
	})
}
