package wasm

import (
	"runtime/debug"
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// memoryPool hands out linear memories that earlier instances used. A fresh
// instance per request otherwise pays for mapping and faulting in tens of
// megabytes of new memory each time; a reused buffer only needs clearing,
// and clearing what was used is cheaper than faulting it in again.
//
// What the pool keeps is bounded in bytes, not only in buffers: a burst of
// guests that each grew to the memory limit would otherwise leave the free
// list holding that limit several times over for as long as the node runs.
// A buffer that does not fit the budget is dropped, and memory the pool lets
// go of is handed back to the operating system, off the request path.
type memoryPool struct {
	mu        sync.Mutex
	free      []*pooledMemory
	freeBytes uint64 // capacity of the buffers in free
	keep      int    // most buffers kept
	budget    uint64 // most bytes kept

	dropped      uint64 // bytes let go of since the last release to the OS
	releasing    bool   // a release to the OS is running
	releaseAgain bool   // more memory was let go while it ran
	// releaseToOS returns freed memory to the OS; a field so tests can count
	// the calls.
	releaseToOS func()
}

// defaultPoolBudget is what the free list may hold in total: a few of the
// buffers a typical guest (a Go program of some megabytes) needs, far below
// a burst of guests at a 256 MiB memory limit.
const defaultPoolBudget = 64 << 20

func newMemoryPool(keep int, budget uint64) *memoryPool {
	return &memoryPool{keep: keep, budget: budget, releaseToOS: debug.FreeOSMemory}
}

// Allocate implements experimental.MemoryAllocator.
func (p *memoryPool) Allocate(capacity, max uint64) experimental.LinearMemory {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		m := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		p.freeBytes -= uint64(cap(m.buf))
		m.max = max
		return m
	}
	return &pooledMemory{pool: p, max: max}
}

// pooled is the capacity of the buffers the pool keeps.
func (p *memoryPool) pooled() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.freeBytes
}

// drain lets go of the free memories, for an idle node.
func (p *memoryPool) drain() {
	p.mu.Lock()
	p.free = nil
	p.freeBytes = 0
	p.dropped = 0
	p.mu.Unlock()
	p.release()
}

// keeps reports whether a buffer of size bytes is worth clearing: one
// larger than the whole budget never fits.
func (p *memoryPool) keeps(size uint64) bool { return size <= p.budget }

func (p *memoryPool) put(m *pooledMemory) {
	p.mu.Lock()
	size := uint64(cap(m.buf))
	if len(p.free) < p.keep && p.freeBytes+size <= p.budget {
		p.free = append(p.free, m)
		p.freeBytes += size
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.drop(m)
}

// drop lets go of m's buffer. Once a budget's worth has been dropped it is
// handed back to the OS, so a steady load of ordinary guests does not force
// a collection per request while a burst of large ones is returned at once.
func (p *memoryPool) drop(m *pooledMemory) {
	size := uint64(cap(m.buf))
	m.buf = nil
	p.mu.Lock()
	p.dropped += size
	due := p.dropped >= p.budget
	if due {
		p.dropped = 0
	}
	p.mu.Unlock()
	if due {
		p.release()
	}
}

// release hands memory the pool dropped back to the OS. Without it the Go
// heap keeps the pages: no allocation follows an idle service's last
// request, so no collection runs and the scavenger has nothing to return.
// Calls while a release runs are folded into one more run after it.
func (p *memoryPool) release() {
	p.mu.Lock()
	if p.releasing {
		p.releaseAgain = true
		p.mu.Unlock()
		return
	}
	p.releasing = true
	p.mu.Unlock()
	go func() {
		for {
			p.releaseToOS()
			p.mu.Lock()
			if !p.releaseAgain {
				p.releasing = false
				p.mu.Unlock()
				return
			}
			p.releaseAgain = false
			p.mu.Unlock()
		}
	}()
}

// pooledMemory is one reusable linear memory. used is the high-water mark
// since the last clear, so Free clears only what the guest could have
// written.
type pooledMemory struct {
	pool *memoryPool
	buf  []byte
	used int
	max  uint64
}

func (m *pooledMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if uint64(cap(m.buf)) < size {
		newCap := 2 * uint64(cap(m.buf))
		if newCap < size {
			newCap = size
		}
		if newCap > m.max {
			newCap = m.max
		}
		grown := make([]byte, size, newCap)
		copy(grown, m.buf)
		m.buf = grown
	}
	m.buf = m.buf[:size]
	if int(size) > m.used {
		m.used = int(size)
	}
	return m.buf
}

// Free clears the memory off the request's path: wazero frees memory
// inside proc_exit, before the response reaches the client. A buffer too
// large to keep is not cleared at all.
func (m *pooledMemory) Free() {
	if !m.pool.keeps(uint64(cap(m.buf))) {
		m.pool.drop(m)
		return
	}
	go func() {
		clear(m.buf[:m.used])
		m.used = 0
		m.buf = m.buf[:0]
		m.pool.put(m)
	}()
}
