package component

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	bin "github.com/fungi-go/fungi/runtimes/wasm/component/internal/binary"
)

// hostFunc implements one WASI function on Go values (see abi.go).
type hostFunc func(c *cx, args []any) []any

// dropper is a host resource that releases something when its last handle goes.
type dropper interface{ drop() }

// WASI 0.2 makes some resources children of others (a pollable of the stream
// it came from, a body's stream of the body, a request's headers of the
// request): the parent cannot be dropped, or consumed, while a child lives,
// and doing so traps, as wasmtime does. A parent embeds family; a child
// names its parent's family through childOf, and every own handle of a child
// counts as one live child while it is in the handle table.
type family struct{ live int }

// liveChildren is how many child handles the parent has out.
func (f *family) liveChildren() int { return f.live }

// parent is a host resource that hands out children.
type parent interface{ liveChildren() int }

// child is a host resource whose handles keep a parent from being dropped.
type child interface{ childOf() *family }

// checkNoChildren traps when obj, about to be dropped or consumed, still has
// live children.
func checkNoChildren(obj any, what string) {
	if p, ok := obj.(parent); ok && p.liveChildren() > 0 {
		trapf("a %s with %d live child resource(s) (a pollable, stream or headers made from it) cannot be dropped; drop the children first", what, p.liveChildren())
	}
}

type handleEntry struct {
	res  *resourceType
	obj  any
	rep  uint32
	own  bool
	lent int // calls this handle is lent to as a borrow; it cannot move or go while > 0
	live bool
	// scope is the call a borrow handle was lowered for; the handle must
	// be dropped before that call returns.
	scope *cx
}

// handleTable is one component instance's resource handles; index 0 is never
// valid. A composed component has one table per component instance inside
// it, so a handle means something only to the instance it was given to and
// passing a resource to another instance moves or lends it through the
// canonical ABI. An instance runs on one goroutine at a time, so there is
// no lock.
type handleTable struct {
	entries []handleEntry
	free    []uint32
	budget  *hostBudget // each live entry is charged handleCost
}

// maxHandles bounds how many resources a guest can hold at once.
const maxHandles = 1 << 20

func (t *handleTable) add(e handleEntry) uint32 {
	e.live = true
	if t.budget != nil {
		t.budget.charge(handleCost)
	}
	if ch, ok := e.obj.(child); ok && e.own {
		if f := ch.childOf(); f != nil {
			f.live++
		}
	}
	if n := len(t.free); n > 0 {
		h := t.free[n-1]
		t.free = t.free[:n-1]
		t.entries[h] = e
		return h
	}
	if len(t.entries) == 0 {
		t.entries = append(t.entries, handleEntry{})
	}
	if len(t.entries) >= maxHandles {
		trapf("more than %d resource handles", maxHandles)
	}
	t.entries = append(t.entries, e)
	return uint32(len(t.entries) - 1)
}

func (t *handleTable) get(h uint32, res *resourceType) *handleEntry {
	if h == 0 || int64(h) >= int64(len(t.entries)) || !t.entries[h].live {
		trapf("resource handle %d is not valid", h)
	}
	e := &t.entries[h]
	if res != nil && e.res != res {
		trapf("resource handle %d is a %s, not a %s", h, e.res.name, res.name)
	}
	return e
}

func (t *handleTable) remove(h uint32) {
	if t.budget != nil {
		t.budget.release(handleCost)
	}
	if e := &t.entries[h]; e.own {
		if ch, ok := e.obj.(child); ok {
			if f := ch.childOf(); f != nil {
				f.live--
			}
		}
	}
	t.entries[h] = handleEntry{}
	t.free = append(t.free, h)
}

type instKey struct{}

// instance is one instantiation of a component: its core module instances
// and its handle table, plus the per-run WASI state.
type instance struct {
	comp   *Component
	mods   []api.Module
	host   api.Module
	tables []handleTable // one per component instance inside (canonOpts.table)
	budget hostBudget    // what the host keeps for this instance, handles included
	wasi   *wasiState
	ctx    context.Context
	funcs  map[coreItem]*reusedFunc
	// wake is signalled (never blocking) by whatever makes a pollable
	// ready from another goroutine: a connection accepted, bytes read, a
	// name resolved. The instance's one goroutine waits on it in poll and
	// block, then checks every pollable again.
	wake chan struct{}
}

// notify wakes the instance if it waits on a pollable; it never blocks.
func notify(wake chan struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}

func (inst *instance) function(it coreItem) api.Function {
	m := inst.host
	if it.inst != hostInstance {
		m = inst.mods[it.inst]
	}
	f := m.ExportedFunction(it.name)
	if f == nil {
		trapf("core function %q is not exported by core instance %d", it.name, it.inst)
	}
	return f
}

func (inst *instance) cxFor(ctx context.Context, o *canonOpts) *cx {
	c := &cx{ctx: ctx, inst: inst, encoding: o.encoding, tableIdx: o.table, table: &inst.tables[o.table]}
	if o.memory != nil {
		m := inst.mods[o.memory.inst].ExportedMemory(o.memory.name)
		if m == nil {
			trapf("memory %q is not exported by core instance %d", o.memory.name, o.memory.inst)
		}
		c.mem = m
	}
	if o.realloc != nil {
		c.realloc = inst.reused(*o.realloc)
	}
	return c
}

// reusedFunc is a core function the host calls again and again (a guest's
// realloc): wazero gives every api.Function its own call stack, tens of
// kilobytes, so making one per host call would allocate that much per call.
// A call that re-enters it while it runs gets a function of its own.
type reusedFunc struct {
	api.Function
	inst *instance
	it   coreItem
	busy bool
}

// Call implements api.Function.
func (f *reusedFunc) Call(ctx context.Context, params ...uint64) ([]uint64, error) {
	if f.busy {
		return f.inst.function(f.it).Call(ctx, params...)
	}
	f.busy = true
	defer func() { f.busy = false }()
	return f.Function.Call(ctx, params...)
}

func (inst *instance) reused(it coreItem) api.Function {
	if f := inst.funcs[it]; f != nil {
		return f
	}
	f := &reusedFunc{Function: inst.function(it), inst: inst, it: it}
	if inst.funcs == nil {
		inst.funcs = map[coreItem]*reusedFunc{}
	}
	inst.funcs[it] = f
	return f
}

// compileHost builds the host module every instance of c imports from.
func (c *Component) compileHost(ctx context.Context, rt wazero.Runtime) (wazero.CompiledModule, error) {
	b := rt.NewHostModuleBuilder("fungi:host")
	for i := range c.hostSpecs {
		spec := &c.hostSpecs[i]
		b.NewFunctionBuilder().
			WithGoModuleFunction(hostGoFunc(spec), valueTypes(spec.params), valueTypes(spec.result)).
			Export("f" + strconv.Itoa(i))
	}
	return b.Compile(ctx)
}

func valueTypes(ts []coreType) []api.ValueType {
	out := make([]api.ValueType, len(ts))
	for i, t := range ts {
		out[i] = [...]api.ValueType{api.ValueTypeI32, api.ValueTypeI64, api.ValueTypeF32, api.ValueTypeF64}[t]
	}
	return out
}

func hostGoFunc(spec *hostSpec) api.GoModuleFunc {
	table := spec.opts.table
	switch spec.kind {
	case bin.CanonResourceNew:
		return func(ctx context.Context, _ api.Module, stack []uint64) {
			inst := ctx.Value(instKey{}).(*instance)
			stack[0] = uint64(inst.tables[table].add(handleEntry{res: spec.res, rep: uint32(stack[0]), own: true}))
		}
	case bin.CanonResourceRep:
		return func(ctx context.Context, _ api.Module, stack []uint64) {
			inst := ctx.Value(instKey{}).(*instance)
			stack[0] = uint64(inst.tables[table].get(uint32(stack[0]), spec.res).rep)
		}
	case bin.CanonResourceDrop:
		return func(ctx context.Context, _ api.Module, stack []uint64) {
			inst := ctx.Value(instKey{}).(*instance)
			h := uint32(stack[0])
			t := &inst.tables[table]
			e := *t.get(h, spec.res)
			if e.lent > 0 {
				trapf("resource handle %d dropped while lent out", h)
			}
			if e.own {
				checkNoChildren(e.obj, spec.res.name)
			}
			t.remove(h)
			if !e.own {
				return
			}
			if d, ok := e.obj.(dropper); ok {
				d.drop()
			}
			if spec.res.dtor != nil {
				if _, err := inst.function(*spec.res.dtor).Call(ctx, uint64(e.rep)); err != nil {
					panic(err)
				}
			}
		}
	}
	ft := spec.fn.typ
	params, results := tupleOf(ft.params), tupleOf(ft.results)
	flatParams := len(params.flat)
	flatResults := len(results.flat)
	host := spec.fn.host
	if callee := spec.fn; callee.lift != nil {
		// Adapter fusion: one of the component's own core instances calls
		// a function another lifts (a wac or WASI-Virt composition, a
		// nested component's export). The arguments pass through Go
		// values, lifted from the caller's memory and lowered into the
		// callee's, as the canonical ABI's fused adapter would copy them;
		// a trap in the callee traps the caller.
		host = func(c *cx, args []any) []any {
			defer c.endLends()
			out, err := c.inst.call(callee, args)
			if err != nil {
				panic(err)
			}
			return out
		}
	}
	return func(ctx context.Context, _ api.Module, stack []uint64) {
		inst := ctx.Value(instKey{}).(*instance)
		c := inst.cxFor(ctx, &spec.opts)
		c.ft = ft
		c.transfer = spec.fn.lift != nil
		defer c.unhold()
		var args []any
		if flatParams > maxFlatParams {
			args = c.load(params, uint32(stack[0])).([]any)
		} else {
			it := &flatIter{v: stack[:flatParams]}
			args = make([]any, len(ft.params))
			for i, p := range ft.params {
				args[i] = c.liftFlat(p, it)
			}
		}
		out := host(c, args)
		switch {
		case flatResults == 0:
		case flatResults <= maxFlatResults:
			v := c.lowerFlat(results, out, nil)
			stack[0] = v[0]
		default:
			ri := flatParams
			if ri > maxFlatParams {
				ri = 1
			}
			c.store(results, out, uint32(stack[ri]))
		}
	}
}

// instantiate makes a fresh instance of the component.
func (c *Component) instantiate(ctx context.Context, w *wasiState) (_ *instance, err error) {
	inst := &instance{comp: c, wasi: w, wake: make(chan struct{}, 1)}
	inst.budget.limit = w.cfg.HostMemoryLimit
	if inst.budget.limit <= 0 {
		inst.budget.limit = max(c.memLimit/hostShare, 1<<16)
	}
	inst.tables = make([]handleTable, max(c.tables, 1))
	for i := range inst.tables {
		inst.tables[i].budget = &inst.budget
	}
	inst.ctx = context.WithValue(ctx, instKey{}, inst)
	defer func() {
		if err != nil {
			inst.close()
		}
	}()
	inst.host, err = c.rt.InstantiateModule(inst.ctx, c.host, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, fmt.Errorf("instantiate the WASI host module: %w", err)
	}
	resolveCtx := experimental.WithImportResolver(inst.ctx, func(name string) api.Module {
		if name == "fungi:host" {
			return inst.host
		}
		if len(name) > 7 && name[:7] == "fungi:i" {
			if i, err := strconv.Atoi(name[7:]); err == nil && i >= 0 && i < len(inst.mods) {
				return inst.mods[i]
			}
		}
		return nil
	})
	for i, cm := range c.modules {
		m, err := c.rt.InstantiateModule(resolveCtx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
		if err != nil {
			return nil, fmt.Errorf("instantiate core module %d: %w", i, describeTrap(err))
		}
		inst.mods = append(inst.mods, m)
	}
	return inst, nil
}

func (inst *instance) close() {
	ctx := context.Background()
	for i := len(inst.mods) - 1; i >= 0; i-- {
		_ = inst.mods[i].Close(ctx)
	}
	if inst.host != nil {
		_ = inst.host.Close(ctx)
	}
	for t := range inst.tables {
		for i := range inst.tables[t].entries {
			e := &inst.tables[t].entries[i]
			if e.live && e.own {
				if d, ok := e.obj.(dropper); ok {
					d.drop()
				}
			}
		}
	}
}

// call runs a lifted export with Go arguments and returns its Go results.
func (inst *instance) call(f *cfunc, args []any) (results []any, err error) {
	ctx := inst.ctx
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
				return
			}
			err = fmt.Errorf("component call failed: %v", r)
		}
	}()
	c := inst.cxFor(ctx, &f.opts)
	defer c.unhold()
	// What the export returns moves to its caller, another component
	// instance or the host, keeping any children it has.
	c.transfer = true
	params, resultsT := f.paramsT, f.resultsT
	var flat []uint64
	if len(params.flat) > maxFlatParams {
		p := c.alloc(params.align, params.size)
		c.store(params, args, p)
		flat = []uint64{uint64(p)}
	} else {
		for i, p := range f.typ.params {
			flat = c.lowerFlat(p, args[i], flat)
		}
	}
	fn := inst.function(*f.lift)
	res, err := fn.Call(ctx, flat...)
	if err != nil {
		return nil, describeTrap(err)
	}
	if len(resultsT.flat) > maxFlatResults {
		if len(res) == 0 {
			trapf("the export returned no result pointer")
		}
		results = c.load(resultsT, uint32(res[0])).([]any)
	} else {
		it := &flatIter{v: res}
		results = make([]any, len(f.typ.results))
		for i, r := range f.typ.results {
			results[i] = c.liftFlat(r, it)
		}
	}
	if f.opts.postReturn != nil {
		if _, err := inst.function(*f.opts.postReturn).Call(ctx, res...); err != nil {
			return nil, describeTrap(err)
		}
	}
	// Every borrow handle lowered for this call must be gone when it
	// returns (the canonical ABI traps otherwise: a borrow cannot outlive
	// the call that lent it).
	for _, h := range c.borrows {
		if e := &c.table.entries[h]; e.live && !e.own && e.scope == c {
			trapf("the export returned while it still held borrow handle %d of a %s; drop borrowed handles before returning", h, e.res.name)
		}
	}
	return results, nil
}

// describeTrap keeps exit errors as they are and names everything else a trap.
func describeTrap(err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return exit
	}
	return err
}
