package gopool

import (
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
)

// goroutineID is the running goroutine's number, from its stack trace's
// first line ("goroutine 42 [running]:").
func goroutineID() uint64 {
	var buf [64]byte
	line := buf[:runtime.Stack(buf[:], false)]
	line = bytes.TrimPrefix(line, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(line[:bytes.IndexByte(line, ' ')]), 10, 64)
	return id
}

// deep grows the calling goroutine's stack past a fresh goroutine's.
func deep(n int) int {
	var pad [512]byte
	pad[n%len(pad)] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + int(pad[n%len(pad)])
}

// runOn runs fn with Go and returns the ID of the goroutine it ran on,
// once the goroutine waits for its next task.
func runOn(t *testing.T, fn func()) uint64 {
	t.Helper()
	ids := make(chan uint64, 1)
	// Go takes a waiting goroutine or starts one; either way one more
	// waits than before once the task is done, and at least one.
	back := max(Idle(), 1)
	Go(func() { fn(); ids <- goroutineID() })
	id := <-ids
	testutil.WaitFor(t, 10*time.Second, "the goroutine back in the pool", func() error {
		if idle := Idle(); idle < back {
			return fmt.Errorf("%d goroutines wait, not %d", idle, back)
		}
		return nil
	})
	return id
}

func TestATaskRunsOnTheGoroutineThatRanThePreviousOne(t *testing.T) {
	first := runOn(t, func() { deep(64) }) // 32 KiB of frames
	for range 3 {
		if got := runOn(t, func() {}); got != first {
			t.Fatalf("the task ran on goroutine %d, not on %d that waited with its grown stack", got, first)
		}
	}
}

func TestTasksThatOverlapEachGetAGoroutine(t *testing.T) {
	const n = 8
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	ids := make(chan uint64, n)
	for range n {
		Go(func() { ids <- goroutineID(); started.Done(); <-release })
	}
	started.Wait() // every task runs at once: none waits for another to end
	close(release)
	seen := map[uint64]bool{}
	for range n {
		seen[<-ids] = true
	}
	if len(seen) != n {
		t.Fatalf("%d tasks running at once ran on %d goroutines", n, len(seen))
	}
}

func TestIdleGoroutinesAreBounded(t *testing.T) {
	base := runtime.NumGoroutine() - Idle()
	const n = maxIdle + 20
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	for range n {
		Go(func() { started.Done(); <-release })
	}
	started.Wait()
	close(release)
	testutil.WaitFor(t, 10*time.Second, "the goroutines past the bound ended", func() error {
		if idle, gs := Idle(), runtime.NumGoroutine(); idle != maxIdle || gs-idle > base {
			return fmt.Errorf("%d idle, %d goroutines (baseline %d besides the idle)", idle, gs, base)
		}
		return nil
	})
}

// The task a bridge's goroutine runs is deep: BenchmarkGo against
// BenchmarkGoStatement is what the pool saves per task (the stack copies)
// and what it costs (the hand-off to a parked goroutine).
func benchmarkTasks(b *testing.B, start func(func())) {
	done := make(chan struct{})
	for b.Loop() {
		start(func() { deep(64); done <- struct{}{} })
		<-done
	}
}

func BenchmarkGo(b *testing.B) { benchmarkTasks(b, Go) }

func BenchmarkGoStatement(b *testing.B) { benchmarkTasks(b, func(fn func()) { go fn() }) }
