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

// The controller gives all Ps at once when goroutines queue, and goes
// back to one only after quietPeriods quiet periods in a row.
func TestControllerRaisesAtOnceAndLowersSlowly(t *testing.T) {
	c := &Controller{Max: 4}
	if n := c.Next(10*time.Microsecond, 1000, 1); n != 1 {
		t.Fatalf("quiet start: %d Ps, want 1", n)
	}
	if n := c.Next(5*time.Millisecond, 2, 1); n != 1 {
		t.Fatalf("a slow period of %d events (too few to say): %d Ps, want 1", 2, n)
	}
	if n := c.Next(5*time.Millisecond, 1000, 0); n != 1 {
		t.Fatalf("a slow period with nothing ready (the machine busy, not the P): %d Ps, want 1", n)
	}
	if n := c.Next(5*time.Millisecond, 1000, 1); n != 4 {
		t.Fatalf("goroutines queued: %d Ps, want 4", n)
	}
	for i := range quietPeriods - 1 {
		if n := c.Next(10*time.Microsecond, 1000, 0); n != 4 {
			t.Fatalf("quiet period %d of %d: %d Ps, want 4 still", i+1, quietPeriods, n)
		}
	}
	if n := c.Next(100*time.Microsecond, 1000, 0); n != 4 {
		t.Fatalf("a period between the thresholds: %d Ps, want 4", n)
	}
	for range quietPeriods - 1 {
		c.Next(10*time.Microsecond, 1000, 0)
	}
	if n := c.Next(10*time.Microsecond, 1000, 0); n != 1 {
		t.Fatalf("after %d quiet periods in a row: %d Ps, want 1", quietPeriods, n)
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

// With goroutines queueing for CPU, Run gives them every P; when ctx
// ends, the runtime has its default back.
func TestRunGivesAllPsToCPUBoundWork(t *testing.T) {
	max := runtime.GOMAXPROCS(0)
	if max < 2 {
		t.Skip("one CPU: nothing to decide")
	}
	t.Setenv("GOMAXPROCS", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx) }()
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
