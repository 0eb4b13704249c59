// Package maxprocs runs a daemon on one P while its goroutines do not wait
// for CPU, and on all of them while they do.
//
// A daemon that forwards connections works in short bursts, each handing
// off to another process (the client, a service, the peer). With a second
// idle P, every goroutine made ready wakes a second thread that spins on
// the other core looking for work and goes back to sleep: measured on the
// access path (two daemons on two cores), one P took the thread switches
// per new connection from 22 to 9 and the CPU from 767 to 567 µs, and
// the latency down by 15%, with throughput no lower. But a CPU-bound load
// (several wasm requests at once, bulk transfers) needs every P, so the
// controller watches the runtime's scheduling latency, the time goroutines
// stand ready for a P, and gives them all Ps as soon as they queue.
package maxprocs

import (
	"context"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"time"
)

// Thresholds of the controller, read every readEvery (a period): goroutines queue for
// the one P when the p90 of the runnable-to-running latency is above
// raiseAbove and goroutines stand ready at the read (a burst of
// connections shows within a period; so do CPU-bound goroutines, which
// wait a 10 ms preemption slice each). A slow p90 with nothing ready is
// the machine's CPU, not the P, taken by others: more Ps do not help
// there. Below lowerBelow for quietPeriods in a row, one P is enough
// again.
const (
	readEvery    = 100 * time.Millisecond
	raiseAbove   = time.Millisecond
	lowerBelow   = 50 * time.Microsecond
	quietPeriods = 100 // 10 s
	minSamples   = 3   // fewer scheduling events in a period say nothing
)

// Controller decides the number of Ps from one period's figures.
type Controller struct {
	Max   int // the Ps a busy daemon gets
	procs int // the Ps it has now
	quiet int // periods in a row below lowerBelow
}

// Next is the number of Ps for the next period, given the p90 of the
// scheduling latency in the last one, how many events it holds, and how
// many goroutines stand ready now.
func (c *Controller) Next(p90 time.Duration, events, runnable uint64) int {
	if c.procs == 0 {
		c.procs = 1
	}
	switch {
	case c.procs < c.Max && events >= minSamples && p90 > raiseAbove && runnable > 0:
		c.procs, c.quiet = c.Max, 0
	case c.procs > 1 && (events < minSamples || p90 < lowerBelow):
		c.quiet++
		if c.quiet >= quietPeriods {
			c.procs, c.quiet = 1, 0
		}
	default:
		c.quiet = 0
	}
	return c.procs
}

// Run sets one P and adjusts it every period until ctx ends, then gives
// the runtime back its default. It does nothing where GOMAXPROCS is set
// in the environment (the user's choice) or there is one CPU.
func Run(ctx context.Context) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	c := &Controller{Max: runtime.GOMAXPROCS(0)}
	if c.Max <= 1 {
		return
	}
	runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(c.Max)
	sample := []metrics.Sample{{Name: "/sched/latencies:seconds"}, {Name: "/sched/goroutines/runnable:goroutines"}}
	var last, period []uint64
	tick := time.NewTicker(readEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindFloat64Histogram || sample[1].Value.Kind() != metrics.KindUint64 {
			return // a runtime without the metrics: its default (deferred)
		}
		h := sample[0].Value.Float64Histogram()
		period = since(period, h.Counts, last)
		last = append(last[:0], h.Counts...)
		p90, events := percentile(period, h.Buckets, 0.9)
		if n := c.Next(p90, events, sample[1].Value.Uint64()); n != runtime.GOMAXPROCS(0) {
			runtime.GOMAXPROCS(n)
		}
	}
}

// since is counts less last (the histogram at the previous read; nil at
// the first), in d's memory.
func since(d, counts, last []uint64) []uint64 {
	d = append(d[:0], counts...)
	for i := range min(len(d), len(last)) {
		d[i] -= last[i]
	}
	return d
}

// percentile is the q-quantile of a histogram's counts, as the upper
// bound of its bucket, and how many events the counts hold.
func percentile(counts []uint64, buckets []float64, q float64) (time.Duration, uint64) {
	var total uint64
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return 0, 0
	}
	want := uint64(q * float64(total))
	var seen uint64
	for i, n := range counts {
		seen += n
		if seen > want {
			return bound(buckets[i+1]), total
		}
	}
	return bound(buckets[len(buckets)-1]), total
}

// bound is a bucket's upper bound in seconds as a duration; the last
// bucket's +Inf counts as a second, which is past every threshold.
func bound(s float64) time.Duration {
	if math.IsInf(s, 1) || s > 1 {
		return time.Second
	}
	return time.Duration(s * float64(time.Second))
}
