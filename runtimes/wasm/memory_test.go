package wasm

import (
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
)

func TestMemoryPoolKeepsWithinItsByteBudget(t *testing.T) {
	const mib = 1 << 20
	var releases atomic.Int32
	p := newMemoryPool(8, 10*mib)
	p.releaseToOS = func() { releases.Add(1) }
	grown := func(size uint64) *pooledMemory {
		m := p.Allocate(0, 64*mib).(*pooledMemory)
		m.Reallocate(size)
		return m
	}
	a, b, c := grown(4*mib), grown(4*mib), grown(4*mib)
	p.put(a)
	p.put(b)
	p.put(c) // 12 MiB would pass the 10 MiB budget
	if got := p.pooled(); got != 8*mib {
		t.Fatalf("pool holds %d MiB, want 8 (two of three 4 MiB buffers)", got/mib)
	}
	big := &pooledMemory{pool: p, max: 64 * mib} // a memory in use by a guest
	big.Reallocate(32 * mib)
	big.Free() // larger than the whole budget: dropped without clearing
	if got := p.pooled(); got != 8*mib {
		t.Fatalf("after a 32 MiB buffer was freed the pool holds %d MiB", got/mib)
	}
	testutil.WaitFor(t, 5*time.Second, "dropped memory handed back to the OS", func() error {
		if releases.Load() == 0 {
			return fmt.Errorf("no release yet")
		}
		return nil
	})
	if m := p.Allocate(0, 64*mib).(*pooledMemory); cap(m.buf) != 4*mib || p.pooled() != 4*mib {
		t.Fatalf("a pooled buffer was not reused: cap %d, pool %d", cap(m.buf), p.pooled())
	}
}

// retainedHeap is the heap memory the process holds from the OS.
func retainedHeap() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapSys - ms.HeapReleased
}

func TestMemoryReturnsAfterBurstsOfHungryGuests(t *testing.T) {
	cfg := DefaultConfig("")
	cfg.MemoryLimitMB = 64
	cfg.MaxConcurrency = 8
	g := startGuest(t, cfg, nil)
	if code, _, _ := get(t, g.base+"/echo"); code != http.StatusOK {
		t.Fatalf("warm-up: %d", code)
	}
	runtime.GC()
	debug.FreeOSMemory()
	baseline := retainedHeap()
	// Each round, every slot runs a guest that grows to the limit and runs
	// out of memory; before the budget the pool kept four 64 MiB buffers
	// and the heap kept the rest, round after round.
	for round := range 2 {
		var wg sync.WaitGroup
		codes := make([]int, cfg.MaxConcurrency)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Get(g.base + "/hog")
				if err == nil {
					codes[i] = resp.StatusCode
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		for _, code := range codes {
			if code != http.StatusBadGateway {
				t.Fatalf("round %d: a guest over its limit got %d, want 502", round, code)
			}
		}
		testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("round %d: the heap back near its baseline", round), func() error {
			if pooled := g.p.memory.pooled(); pooled > defaultPoolBudget {
				return fmt.Errorf("the pool holds %d MiB, over its %d MiB budget", pooled>>20, defaultPoolBudget>>20)
			}
			if retained := retainedHeap(); retained > baseline+2*defaultPoolBudget {
				return fmt.Errorf("the heap holds %d MiB from the OS, %d MiB over the baseline", retained>>20, (retained-baseline)>>20)
			}
			return nil
		})
	}
}
