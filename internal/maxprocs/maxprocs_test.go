package maxprocs

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
)

// The controller gives all Ps at once when goroutines queue while the one
// P runs flat out, and goes back to one only after quietPeriods quiet
// periods in a row.
func TestControllerRaisesAtOnceAndLowersSlowly(t *testing.T) {
	quiet := Period{P90: 10 * time.Microsecond, Events: 1000, Cores: 0.2}
	queued := Period{P90: 5 * time.Millisecond, Events: 1000, Runnable: 1, Cores: 0.95}
	c := &Controller{Max: 4}
	if n := c.Next(quiet); n != 1 {
		t.Fatalf("quiet start: %d Ps, want 1", n)
	}
	few := queued
	few.Events = 2
	if n := c.Next(few); n != 1 {
		t.Fatalf("a slow period of %d events (too few to say): %d Ps, want 1", few.Events, n)
	}
	none := queued
	none.Runnable = 0
	if n := c.Next(none); n != 1 {
		t.Fatalf("a slow period with nothing ready (the machine busy, not the P): %d Ps, want 1", n)
	}
	if n := c.Next(queued); n != 4 {
		t.Fatalf("goroutines queued: %d Ps, want 4", n)
	}
	for i := range quietPeriods - 1 {
		if n := c.Next(quiet); n != 4 {
			t.Fatalf("quiet period %d of %d: %d Ps, want 4 still", i+1, quietPeriods, n)
		}
	}
	between := Period{P90: 100 * time.Microsecond, Events: 1000, Cores: 1.5}
	if n := c.Next(between); n != 4 {
		t.Fatalf("a busy period between the thresholds: %d Ps, want 4", n)
	}
	for range quietPeriods - 1 {
		c.Next(quiet)
	}
	if n := c.Next(quiet); n != 1 {
		t.Fatalf("after %d quiet periods in a row: %d Ps, want 1", quietPeriods, n)
	}
}

// Goroutines that queue while the process gets less than a core are
// waiting for the machine, not for the P: the controller keeps one P, and
// a daemon raised earlier goes back to one once it uses no more than a
// core, however slow the latency.
func TestControllerKeepsOnePWhenTheMachineIsBusy(t *testing.T) {
	starved := Period{P90: 5 * time.Millisecond, Events: 1000, Runnable: 3, Cores: 0.65}
	c := &Controller{Max: 2}
	for i := range 3 * quietPeriods {
		if n := c.Next(starved); n != 1 {
			t.Fatalf("period %d: goroutines queued at %.2f of a core: %d Ps, want 1", i, starved.Cores, n)
		}
	}
	unknown := starved
	unknown.Cores = -1
	if n := c.Next(unknown); n != 2 {
		t.Fatalf("goroutines queued, the CPU not known: %d Ps, want 2 (the latency decides)", n)
	}
	parallel := starved
	parallel.Cores = 1.6
	for range 2 * quietPeriods {
		if n := c.Next(parallel); n != 2 {
			t.Fatalf("goroutines run in parallel on %.1f cores: %d Ps, want 2", parallel.Cores, n)
		}
	}
	for range quietPeriods - 1 {
		c.Next(starved)
	}
	if n := c.Next(starved); n != 1 {
		t.Fatalf("after %d periods at %.2f of a core: %d Ps, want 1", quietPeriods, starved.Cores, n)
	}
}

// percentile reads the events since the last read, not since start.
func TestPercentileOfThePeriod(t *testing.T) {
	h := &metrics.Float64Histogram{Buckets: []float64{0, 1e-5, 1e-4, 1e-3, 1e-2}, Counts: []uint64{100, 0, 0, 0}}
	d := since(nil, h.Counts, nil)
	if p, n := percentile(d, h.Buckets, 0.9); p != 10*time.Microsecond || n != 100 {
		t.Fatalf("first read: p90 %v of %d events, want 10µs of 100", p, n)
	}
	last := append([]uint64(nil), h.Counts...)
	h.Counts = []uint64{100, 0, 0, 50}
	d = since(d, h.Counts, last)
	if p, n := percentile(d, h.Buckets, 0.9); p != 10*time.Millisecond || n != 50 {
		t.Fatalf("second read: p90 %v of %d events, want 10ms of 50", p, n)
	}
}

// With goroutines queueing for CPU while the process runs flat out, Run
// gives them every P; when ctx ends, the runtime has its default back.
// The scheduling latency and the goroutines standing ready are the
// runtime's own; the CPU the process got is told as a full core each
// period (fullCore), since on a machine loaded by other tests the process
// may get less, and then the controller rightly keeps one P
// (TestControllerKeepsOnePWhenTheMachineIsBusy).
func TestRunGivesAllPsToCPUBoundWork(t *testing.T) {
	max := runtime.GOMAXPROCS(0)
	if max < 2 {
		t.Skip("one CPU: nothing to decide")
	}
	t.Setenv("GOMAXPROCS", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	fullCore := func() (time.Duration, bool) { return time.Since(start), true }
	go func() { defer close(done); run(ctx, fullCore) }()
	defer func() {
		cancel()
		<-done
		if n := runtime.GOMAXPROCS(0); n != max {
			t.Errorf("GOMAXPROCS %d after Run returned, want the default %d", n, max)
		}
	}()
	testutil.WaitFor(t, 10*time.Second, "one P at start", func() error {
		if n := runtime.GOMAXPROCS(0); n != 1 {
			return fmt.Errorf("GOMAXPROCS %d", n)
		}
		return nil
	})
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 2 * max { // CPU-bound goroutines, preempted by the runtime
		wg.Add(1)
		go func() {
			defer wg.Done()
			for x := 0; !stop.Load(); x++ {
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()
	testutil.WaitFor(t, 30*time.Second, "every P for CPU-bound goroutines", func() error {
		if n := runtime.GOMAXPROCS(0); n != max {
			return fmt.Errorf("GOMAXPROCS %d, want %d", n, max)
		}
		return nil
	})
}

// processCPU counts the CPU the process runs.
func TestProcessCPUCountsWhatRan(t *testing.T) {
	before, ok := processCPU()
	if !ok {
		t.Skip("this system does not tell a process's CPU time")
	}
	deadline := time.Now().Add(30 * time.Second)
	for x := 0; ; x++ {
		if x%(1<<20) != 0 {
			continue
		}
		used, _ := processCPU()
		if used-before >= 20*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v of CPU counted after spinning for 30 s", used-before)
		}
	}
}
