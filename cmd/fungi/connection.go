package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

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
				// --json still prints what came, the failed ping last
				// with its error, so scripts see which seq failed and why.
				if c.JSON {
					if len(results) == 0 || results[len(results)-1].Error == "" {
						results = append(results, &messages.PingResult{Seq: int32(len(results) + 1), Error: message(err)})
					}
					printJSONList(e.stdout, results)
				}
				return err
			}
			results = append(results, r)
			if r.Error != "" {
				// The daemon ends the stream with the error next; a
				// failed ping has no round trip to print.
				continue
			}
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
	List connectionListCmd `cmd:"" aliases:"ls" help:"List open connections to peers: direct or relayed, transport, RTT."`
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
		fmt.Fprintln(w, "PEER\tDIRECTION\tPATH\tTRANSPORT\tRTT\tADDRESS\tHOLE PUNCH")
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
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", who, cn.Direction, path, cn.Transport, rtt, cn.RemoteAddr, punchSummary(cn))
		}
		return w.Flush()
	})
}

// punchSummary says, for a relayed connection, when hole punching was last
// tried, why it failed, and when it is tried next.
func punchSummary(cn *messages.ConnectionInfo) string {
	if !cn.Relayed {
		return "-"
	}
	var parts []string
	if cn.PunchLastTry != "" {
		s := "tried " + cn.PunchLastTry
		if cn.PunchError != "" {
			s += " (failed: " + cn.PunchError + ")"
		}
		parts = append(parts, s)
	}
	if cn.PunchNextTry != "" {
		parts = append(parts, "next "+cn.PunchNextTry)
	}
	if len(parts) == 0 {
		return "not tried yet"
	}
	return strings.Join(parts, ", ")
}
