package main

import (
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/fungi-go/fungi/internal/testutil"
)

// waitfile FILE REGEXP waits until the file exists and matches: the daemon
// writes its log line for a request right after answering it, so the
// command that made the request may return first.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: waitfile FILE REGEXP")
	}
	re := regexp.MustCompile(args[1])
	path := ts.MkAbs(args[0])
	err := testutil.Poll(30*time.Second, func() error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !re.Match(data) {
			return fmt.Errorf("no match for %q in %s:\n%s", args[1], path, data)
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("%v", err)
	}
}
