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
// stand ready for a P, and gives them all Ps as soon as they queue while
// the one P runs flat out.
//
// Goroutines also stand ready when the machine's cores are taken by other
// processes: on the access path's bulk transfers (two daemons, the client
// and the service on two cores) each daemon had goroutines queueing while
// it got 0.6–0.7 of a core. More Ps do not make cores; they made each
// daemon's threads hand work to each other, and the two daemons spent
// 2.5–3.0 s of CPU per GiB over eight streams instead of 1.8–2.0 s at one
// P. So the controller raises only when the process has used nearly all
// of its one P's core in the period, which CPU-bound goroutines and a
// burst of connections do.
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
// there; nor do they when the process used less than saturated of a core
// in the period (its one thread is not what the goroutines wait for).
// Below lowerBelow, or with no more than a core's work (more Ps ran
// nothing in parallel), for quietPeriods in a row, one P is enough again:
// a daemon raised by a burst would otherwise stay raised through a bulk
// transfer, whose thread hand-offs at more Ps cost the CPU that keeps its
// latency above the threshold.
const (
	readEvery    = 100 * time.Millisecond
	raiseAbove   = time.Millisecond
	lowerBelow   = 50 * time.Microsecond
	saturated    = 0.85 // of one core, in a period, to raise
	parallelAt   = 1.0  // cores used in a period: at most this is quiet
	quietPeriods = 100  // 10 s
	minSamples   = 3    // fewer scheduling events in a period say nothing
)

// Controller decides the number of Ps from one period's figures.
type Controller struct {
	Max   int // the Ps a busy daemon gets
	procs int // the Ps it has now
	quiet int // quiet periods in a row (see the thresholds)
}

// Period is what the controller reads of one period.
type Period struct {
	P90      time.Duration // of the runnable-to-running latency
	Events   uint64        // scheduling events the latency histogram holds
	Runnable uint64        // goroutines standing ready at the read
	Cores    float64       // CPU the process used, in cores (1 = one core all the period); negative where unknown
}

// Next is the number of Ps for the next period, given the last one.
func (c *Controller) Next(p Period) int {
	if c.procs == 0 {
		c.procs = 1
	}
	known := p.Cores >= 0
	switch {
	case c.procs < c.Max && p.Events >= minSamples && p.P90 > raiseAbove && p.Runnable > 0 && (!known || p.Cores >= saturated*float64(c.procs)):
		c.procs, c.quiet = c.Max, 0
	case c.procs > 1 && (p.Events < minSamples || p.P90 < lowerBelow || known && p.Cores <= parallelAt):
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
func Run(ctx context.Context) { run(ctx, processCPU) }

// run is Run with the process's CPU time read by cpu.
func run(ctx context.Context, cpu func() (time.Duration, bool)) {
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
	cpuBefore, _ := cpu()
	readBefore := time.Now()
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
		p := Period{Runnable: sample[1].Value.Uint64(), Cores: -1}
		p.P90, p.Events = percentile(period, h.Buckets, 0.9)
		now := time.Now()
		if used, ok := cpu(); ok {
			p.Cores = float64(used-cpuBefore) / float64(now.Sub(readBefore))
			cpuBefore = used
		}
		readBefore = now
		if n := c.Next(p); n != runtime.GOMAXPROCS(0) {
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
