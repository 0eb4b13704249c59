package component

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero"
)

// The host keeps objects on a guest's behalf (header fields, buffered
// bodies, stream buffers, handle-table entries, directory listings) in Go
// memory, outside the linear memory wazero bounds. Without a bound of its
// own a guest with a megabyte of linear memory could make the host hold
// gigabytes, one fields.append at a time. So every instance has a budget of
// host bytes, a quarter of its linear-memory limit (see hostShare): what the host allocates
// for the guest is charged before it is allocated, released when the guest
// drops the object, and going over traps the instance as running out of
// linear memory does.

// HostMemoryError is the trap of an instance whose host-side objects went
// over its budget.
type HostMemoryError struct {
	// Limit is the budget in bytes.
	Limit int64
}

func (e *HostMemoryError) Error() string {
	return fmt.Sprintf("the component kept more than %s of host memory (fields, bodies, streams, handles): its memory limit is wasm.memoryLimitMB", mib(e.Limit))
}

func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// hostShare divides the linear-memory limit into the default host budget.
// What the budget counts is not all the host's objects cost: Go's collector
// lets the heap grow to about twice what is live before it collects, and
// lifted arguments, copies and the allocator's rounding come on top. A
// quarter of the limit keeps what the process holds for an instance's host
// objects within the limit itself (the hostile-component drill measures
// it), so memoryLimitMB × maxConcurrency bounds a service's requests.
const hostShare = 4

// Costs charged besides the bytes a guest names: what one handle-table
// entry, one header line and one directory entry take in Go memory (slice
// and string headers, interface values, the allocator's rounding).
const (
	handleCost   = 256 // the entry, the table's growth, and the object behind it
	fieldCost    = 64
	dirEntryCost = 128
	// listElemCost is what one element of a lifted list of non-bytes takes
	// as a Go value (an interface, and the value behind it), beyond what its
	// own strings and lists are charged.
	listElemCost = 32
)

// hostBudget counts the bytes the host keeps for one instance. An instance
// runs on one goroutine at a time, so there is no lock.
type hostBudget struct {
	limit int64 // instantiate sets it; zero (a bare instance in a unit test) counts without a bound
	used  int64
	peak  int64
}

// charge accounts n more bytes, trapping the instance when they do not fit.
// Call it before allocating what it pays for.
func (b *hostBudget) charge(n int64) {
	if b.limit > 0 && (n < 0 || n > b.limit-b.used) {
		panic(&HostMemoryError{Limit: b.limit})
	}
	b.used += n
	b.peak = max(b.peak, b.used)
}

// release gives back bytes an earlier charge accounted.
func (b *hostBudget) release(n int64) {
	b.used = max(b.used-n, 0)
}

// hold charges n bytes for the rest of the current host call: a value lifted
// from guest memory, or a buffer a read fills, that the call lets go of.
func (c *cx) hold(n int64) {
	c.inst.budget.charge(n)
	c.held += n
}

// unhold releases what the call held.
func (c *cx) unhold() {
	c.inst.budget.release(c.held)
	c.held = 0
}

// runtimeMemoryLimit is the linear-memory limit rt was configured with
// (wazero.RuntimeConfig.WithMemoryLimitPages, 4 GiB unless set), in bytes:
// wazero gives a memory that declares no maximum the limit as its maximum.
func runtimeMemoryLimit(ctx context.Context, rt wazero.Runtime) (int64, error) {
	// (module (memory (export "m") 0))
	probe := []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
		5, 3, 1, 0x00, 0,
		7, 5, 1, 1, 'm', 0x02, 0}
	cm, err := rt.CompileModule(ctx, probe)
	if err != nil {
		return 0, fmt.Errorf("read the runtime's memory limit: %w", err)
	}
	defer cm.Close(ctx)
	m, ok := cm.ExportedMemories()["m"]
	if !ok {
		return 0, fmt.Errorf("read the runtime's memory limit: the probe module exports no memory")
	}
	pages, _ := m.Max()
	return int64(pages) << 16, nil
}
