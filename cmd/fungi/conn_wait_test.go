package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/fungi-go/fungi/messages"
)

// waitconn DIR PEER_ID REGEXP [SECONDS] waits (60 s by default) until one
// of the node's connections to PEER_ID, as JSON (`connection list --json`
// fields), matches REGEXP; e.g. a relayed connection whose hole punch
// failed: waitconn b $AID '"punchError":\s*"[^"]+"'. (protojson varies
// its spacing on purpose: match with \s*.)
func cmdWaitConn(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 3 {
		ts.Fatalf("usage: waitconn DIR PEER_ID REGEXP [SECONDS]")
	}
	re := regexp.MustCompile(args[2])
	within := 60 * time.Second
	if len(args) > 3 {
		n, err := strconv.Atoi(args[3])
		ts.Check(err)
		within = time.Duration(n) * time.Second
	}
	var last string
	err := pollDaemon(ts, ts.MkAbs(args[0]), within, func(c *daemonClient) error {
		res, err := c.Connections(context.Background(), &messages.ConnectionListRequest{})
		if err != nil {
			return err
		}
		last = ""
		for _, cn := range res.Connections {
			if cn.PeerId != args[1] {
				continue
			}
			b, _ := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(cn)
			last += string(b) + "\n"
			if re.Match(b) {
				return nil
			}
		}
		return fmt.Errorf("no connection to %s matches %q", args[1], args[2])
	})
	if err != nil {
		ts.Fatalf("%v; the connections were:\n%s", err, last)
	}
}

// waitdevice DIR DEVICE REGEXP waits (60 s) until the device's address-book
// entry, as JSON (`device list --json` fields), matches REGEXP.
func cmdWaitDevice(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: waitdevice DIR DEVICE REGEXP")
	}
	re := regexp.MustCompile(args[2])
	var last string
	err := pollDaemon(ts, ts.MkAbs(args[0]), 60*time.Second, func(c *daemonClient) error {
		d, err := c.ResolveDevice(context.Background(), &messages.DeviceResolve{Device: args[1]})
		if err != nil {
			return err
		}
		b, _ := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(d)
		last = string(b)
		if !re.Match(b) {
			return fmt.Errorf("%s does not match %q", args[1], args[2])
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("%v; the entry was:\n%s", err, last)
	}
}
