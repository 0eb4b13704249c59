package wasm

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// memoryPool hands out linear memories that earlier instances used. A fresh
// instance per request otherwise pays for mapping and faulting in tens of
// megabytes of new memory each time; a reused buffer only needs clearing,
// and clearing what was used is cheaper than faulting it in again.
type memoryPool struct {
	mu   sync.Mutex
	free []*pooledMemory
	keep int
}

func newMemoryPool(keep int) *memoryPool {
	return &memoryPool{keep: keep}
}

// Allocate implements experimental.MemoryAllocator.
func (p *memoryPool) Allocate(capacity, max uint64) experimental.LinearMemory {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		m := p.free[n-1]
		p.free = p.free[:n-1]
		m.max = max
		return m
	}
	return &pooledMemory{pool: p, max: max}
}

// drain lets go of the free memories, for an idle node.
func (p *memoryPool) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = nil
}

func (p *memoryPool) put(m *pooledMemory) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < p.keep {
		p.free = append(p.free, m)
	}
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
// inside proc_exit, before the response reaches the client.
func (m *pooledMemory) Free() {
	go func() {
		clear(m.buf[:m.used])
		m.used = 0
		m.buf = m.buf[:0]
		m.pool.put(m)
	}()
}
