// Command sleepjob is a WASI preview 1 job for the CLI tests that runs
// until it is stopped: it says so, then sleeps.
package main

import (
	"fmt"
	"time"
)

func main() {
	fmt.Println("sleepjob: waiting to be stopped")
	time.Sleep(time.Hour)
	fmt.Println("sleepjob: not stopped within the hour")
}
