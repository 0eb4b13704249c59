package component

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	bin "github.com/fungi-go/fungi/runtimes/wasm/component/internal/binary"
)

// Linking evaluates a component's definitions once, at compile time, into a
// flat plan: the core modules to instantiate in order (their imports
// rewritten to name the core instance that provides each item), the host
// functions they call (lowered WASI functions and resource built-ins), and
// the lifted exports. Instantiating the plan is then only wazero work.

// coreItem names a core item: export name of a planned core instance, or of
// the host module when inst == hostInstance.
type coreItem struct {
	inst int
	name string
}

const hostInstance = -1

func (c coreItem) module() string {
	if c.inst == hostInstance {
		return "fungi:host"
	}
	return "fungi:i" + strconv.Itoa(c.inst)
}

type moduleDef struct{ bytes []byte }

// coreInstance is a planned instantiation (plan >= 0) or a bag of items.
type coreInstance struct {
	plan int
	bag  map[string]coreSortItem
}

type coreSortItem struct {
	sort byte
	item coreItem
}

// canonOpts are the canonical options of a lift or lower.
type canonOpts struct {
	memory, realloc, postReturn *coreItem
	encoding                    byte
	table                       int // the handle table of the instance that made the lift, lower or built-in
}

// cfunc is a component function: a host (WASI) function or a lifted core function.
type cfunc struct {
	typ *funcType
	// paramsT and resultsT are the parameter and result tuples, laid out
	// at link time so concurrent calls only read them.
	paramsT, resultsT *vtype
	host              hostFunc
	iface             string
	name              string
	lift              *coreItem
	opts              canonOpts
}

// cinstance is a component instance's exports.
type cinstance struct {
	exports map[string]any // *cfunc, *cinstance, type entries
}

type componentDef struct {
	c      *bin.Component
	parent *scope
}

// hostSpec is one function of the host module.
type hostSpec struct {
	kind   byte // bin.CanonLower or a resource built-in
	fn     *cfunc
	opts   canonOpts
	res    *resourceType
	params []coreType
	result []coreType
}

type plannedModule struct {
	bytes []byte
}

// Bounds on linking, so that a small binary that instantiates its nested
// components over and over cannot make a pull run for long.
const (
	maxLinkSteps        = 1 << 20
	maxCoreInstances    = 1 << 10
	maxHostFuncsPerComp = 1 << 16
	maxComponentInsts   = 1 << 10
)

type linker struct {
	steps     int
	plan      []plannedModule
	hostFuncs []hostSpec
	missing   map[string][]string // interface -> functions fungi does not provide
	imports   []string
	tables    int // component instances linked, each with a handle table
}

func (l *linker) addHost(h hostSpec) coreItem {
	if len(l.hostFuncs) >= maxHostFuncsPerComp {
		trapf("more than %d lowered functions and resource built-ins", maxHostFuncsPerComp)
	}
	l.hostFuncs = append(l.hostFuncs, h)
	return coreItem{inst: hostInstance, name: "f" + strconv.Itoa(len(l.hostFuncs)-1)}
}

// splitVersion turns "wasi:io/streams@0.2.3" into ("wasi:io/streams", "0.2.3").
func splitVersion(name string) (string, string) {
	if i := strings.LastIndexByte(name, '@'); i > 0 {
		return name[:i], name[i+1:]
	}
	return name, ""
}

// hostInstanceFor binds an imported instance to fungi's WASI host, noting
// every function fungi does not provide.
func (l *linker) hostInstanceFor(name string, it *instanceType) *cinstance {
	iface, version := splitVersion(name)
	inst := &cinstance{exports: map[string]any{}}
	funcs, known := hostFuncs[iface]
	if known && version != "" && !strings.HasPrefix(version, "0.2.") {
		known = false
	}
	for en, e := range it.exports {
		switch e := e.(type) {
		case *funcType:
			h, ok := funcs[en]
			if !known || !ok {
				l.missing[name] = append(l.missing[name], en)
				inst.exports[en] = &cfunc{typ: e, iface: iface, name: en}
				continue
			}
			inst.exports[en] = &cfunc{typ: e, host: h.fn, iface: iface, name: en}
		default:
			inst.exports[en] = e
		}
	}
	if !known && len(l.missing[name]) == 0 {
		l.missing[name] = append(l.missing[name], "(the whole interface)")
	}
	return inst
}

// linkTop links the outermost component; a bound the linker hits deep
// inside (a trap), or a fault of the linker itself, comes back as an error
// so that a pull fails and the daemon keeps serving.
func (l *linker) linkTop(c *bin.Component, s *scope) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if t, ok := r.(*trap); ok {
				err = errors.New(t.msg)
				return
			}
			err = fmt.Errorf("fungi's component linker failed (%v); please report it with the component", r)
		}
	}()
	l.tables = 1
	return l.link(c, s, nil, 0)
}

// link evaluates c's definitions in s. args binds a nested component's
// imports; nil means the outermost component, whose imports are the host's.
func (l *linker) link(c *bin.Component, s *scope, args map[string]any, depth int) error {
	if depth > bin.MaxDepth {
		return errors.New("component instantiations nested too deep")
	}
	s.exports = map[string]any{}
	for i, d := range c.Defs {
		if l.steps++; l.steps > maxLinkSteps {
			return fmt.Errorf("linking takes more than %d steps; the component is refused as too complex", maxLinkSteps)
		}
		if err := l.linkDef(d, s, args, depth); err != nil {
			return fmt.Errorf("definition %d (%T): %w", i, d, err)
		}
	}
	return nil
}

func idx[T any](list []T, i uint32, what string) (T, error) {
	var zero T
	if int64(i) >= int64(len(list)) {
		return zero, fmt.Errorf("%s index %d out of range (%d defined)", what, i, len(list))
	}
	return list[i], nil
}

func (l *linker) linkDef(d any, s *scope, args map[string]any, depth int) error {
	switch d := d.(type) {
	case *bin.CustomDef:
	case *bin.CoreModuleDef:
		s.coreModules = append(s.coreModules, &moduleDef{bytes: d.Bytes})
	case *bin.CoreTypeDef:
		s.coreTypes = append(s.coreTypes, d)
	case *bin.NestedComponent:
		s.components = append(s.components, &componentDef{c: d.Component, parent: s})
	case *bin.CoreInstanceDef:
		if d.Inline {
			bag := map[string]coreSortItem{}
			for _, e := range d.Exports {
				it, err := s.coreSortItem(e.Sort, e.Idx)
				if err != nil {
					return err
				}
				bag[e.Name] = coreSortItem{sort: e.Sort, item: it}
			}
			s.coreInstances = append(s.coreInstances, &coreInstance{bag: bag})
			return nil
		}
		m, err := idx(s.coreModules, d.Module, "core module")
		if err != nil {
			return err
		}
		argInst := map[string]*coreInstance{}
		for _, a := range d.Args {
			ci, err := idx(s.coreInstances, a.Instance, "core instance")
			if err != nil {
				return err
			}
			argInst[a.Name] = ci
		}
		rewritten, err := rewriteImports(m.bytes, func(mod, field string, kind byte) (coreItem, error) {
			ci, ok := argInst[mod]
			if !ok {
				return coreItem{}, fmt.Errorf("core import %q.%q: no instantiation argument named %q", mod, field, mod)
			}
			if ci.bag == nil {
				return coreItem{inst: ci.plan, name: field}, nil
			}
			it, ok := ci.bag[field]
			if !ok {
				return coreItem{}, fmt.Errorf("core import %q.%q: the argument has no export %q", mod, field, field)
			}
			if it.sort != kind {
				return coreItem{}, fmt.Errorf("core import %q.%q: kind %d, argument gives kind %d", mod, field, kind, it.sort)
			}
			return it.item, nil
		})
		if err != nil {
			return err
		}
		if len(l.plan) >= maxCoreInstances {
			return fmt.Errorf("more than %d core module instances", maxCoreInstances)
		}
		l.plan = append(l.plan, plannedModule{bytes: rewritten})
		s.coreInstances = append(s.coreInstances, &coreInstance{plan: len(l.plan) - 1})
	case *bin.InstanceDef:
		if d.Inline {
			inst := &cinstance{exports: map[string]any{}}
			for _, a := range d.Args {
				it, err := s.item(a.Item)
				if err != nil {
					return err
				}
				inst.exports[a.Name] = it
			}
			s.instances = append(s.instances, inst)
			return nil
		}
		cd, err := idx(s.components, d.Component, "component")
		if err != nil {
			return err
		}
		nargs := map[string]any{}
		for _, a := range d.Args {
			it, err := s.item(a.Item)
			if err != nil {
				return err
			}
			nargs[a.Name] = it
		}
		if l.tables >= maxComponentInsts {
			return fmt.Errorf("more than %d component instances", maxComponentInsts)
		}
		inner := &scope{parent: cd.parent, table: l.tables}
		l.tables++
		if err := l.link(cd.c, inner, nargs, depth+1); err != nil {
			return fmt.Errorf("nested component: %w", err)
		}
		s.instances = append(s.instances, &cinstance{exports: inner.exports})
	case *bin.AliasDef:
		return l.alias(d, s)
	case *bin.TypeDef:
		t, err := resolveType(s, d, "")
		if err != nil {
			return err
		}
		if r, ok := t.(*resourceType); ok {
			r.impl = s.table
		}
		s.types = append(s.types, t)
	case *bin.CanonDef:
		return l.canon(d, s)
	case *bin.ImportDef:
		var item any
		if args == nil {
			ti, err := descItem(s, d.Desc, d.Name)
			if err != nil {
				return fmt.Errorf("import %s: %w", d.Name, err)
			}
			l.imports = append(l.imports, d.Name)
			switch ti := ti.(type) {
			case *instanceType:
				item = l.hostInstanceFor(d.Name, ti)
			case *funcType:
				l.missing[d.Name] = append(l.missing[d.Name], "(a bare function)")
				item = &cfunc{typ: ti}
			case *componentType:
				l.missing[d.Name] = append(l.missing[d.Name], "(a component)")
				item = &componentDef{}
			default:
				item = ti
			}
		} else {
			a, ok := args[d.Name]
			if !ok {
				return fmt.Errorf("nested import %q has no argument", d.Name)
			}
			item = a
		}
		return s.push(d.Desc.Kind, item, d.Name)
	case *bin.ExportDef:
		it, err := s.item(d.Item)
		if err != nil {
			return fmt.Errorf("export %s: %w", d.Name, err)
		}
		s.exports[d.Name] = it
		if !d.Item.Sort.Core {
			return s.push(d.Item.Sort.Kind, it, d.Name)
		}
	default:
		return fmt.Errorf("definition %T is not supported", d)
	}
	return nil
}

// push appends a component-level item to its index space (sort kinds and
// extern descriptor kinds share numbering for func, type, component, instance).
func (s *scope) push(kind byte, item any, name string) error {
	switch kind {
	case bin.SortFunc:
		f, ok := item.(*cfunc)
		if !ok {
			return fmt.Errorf("%s: a %T where a function is needed", name, item)
		}
		s.funcs = append(s.funcs, f)
	case bin.SortType:
		s.types = append(s.types, item)
	case bin.SortInstance:
		i, ok := item.(*cinstance)
		if !ok {
			return fmt.Errorf("%s: a %T where an instance is needed", name, item)
		}
		s.instances = append(s.instances, i)
	case bin.SortComponent:
		c, ok := item.(*componentDef)
		if !ok {
			return fmt.Errorf("%s: a %T where a component is needed", name, item)
		}
		s.components = append(s.components, c)
	default:
		return fmt.Errorf("%s: kind %#x is not supported", name, kind)
	}
	return nil
}

func (s *scope) item(si bin.SortIdx) (any, error) {
	if si.Sort.Core {
		if si.Sort.Kind == bin.CoreModule {
			return idx(s.coreModules, si.Idx, "core module")
		}
		return s.coreSortItem(si.Sort.Kind, si.Idx)
	}
	switch si.Sort.Kind {
	case bin.SortFunc:
		return idx(s.funcs, si.Idx, "func")
	case bin.SortType:
		return s.typ(si.Idx)
	case bin.SortInstance:
		return idx(s.instances, si.Idx, "instance")
	case bin.SortComponent:
		return idx(s.components, si.Idx, "component")
	}
	return nil, fmt.Errorf("%s items are not supported", si.Sort)
}

func (s *scope) coreSortItem(sort byte, i uint32) (coreItem, error) {
	switch sort {
	case bin.CoreFunc:
		return idx(s.coreFuncs, i, "core func")
	case bin.CoreTable:
		return idx(s.coreTables, i, "core table")
	case bin.CoreMemory:
		return idx(s.coreMemories, i, "core memory")
	case bin.CoreGlobal:
		return idx(s.coreGlobals, i, "core global")
	}
	return coreItem{}, fmt.Errorf("core sort %#x cannot be exported by a core instance here", sort)
}

func (s *scope) pushCore(sort byte, it coreItem) error {
	switch sort {
	case bin.CoreFunc:
		s.coreFuncs = append(s.coreFuncs, it)
	case bin.CoreTable:
		s.coreTables = append(s.coreTables, it)
	case bin.CoreMemory:
		s.coreMemories = append(s.coreMemories, it)
	case bin.CoreGlobal:
		s.coreGlobals = append(s.coreGlobals, it)
	default:
		return fmt.Errorf("core sort %#x cannot be aliased from a core instance", sort)
	}
	return nil
}

func (l *linker) alias(d *bin.AliasDef, s *scope) error {
	switch d.Target {
	case bin.AliasCoreExport:
		ci, err := idx(s.coreInstances, d.Instance, "core instance")
		if err != nil {
			return err
		}
		var it coreItem
		if ci.bag != nil {
			b, ok := ci.bag[d.Name]
			if !ok {
				return fmt.Errorf("core instance %d has no export %q", d.Instance, d.Name)
			}
			it = b.item
		} else {
			it = coreItem{inst: ci.plan, name: d.Name}
		}
		return s.pushCore(d.Sort.Kind, it)
	case bin.AliasExport:
		inst, err := idx(s.instances, d.Instance, "instance")
		if err != nil {
			return err
		}
		it, ok := inst.exports[d.Name]
		if !ok {
			return fmt.Errorf("instance %d has no export %q", d.Instance, d.Name)
		}
		if d.Sort.Core {
			return fmt.Errorf("alias of a core %s from a component instance is not supported", d.Sort)
		}
		return s.push(d.Sort.Kind, it, d.Name)
	case bin.AliasOuter:
		o, err := s.outer(d.Count)
		if err != nil {
			return err
		}
		switch {
		case d.Sort.Core && d.Sort.Kind == bin.CoreModule:
			m, err := idx(o.coreModules, d.Idx, "core module")
			if err != nil {
				return err
			}
			s.coreModules = append(s.coreModules, m)
		case d.Sort.Core && d.Sort.Kind == bin.CoreTypeSort:
			t, err := idx(o.coreTypes, d.Idx, "core type")
			if err != nil {
				return err
			}
			s.coreTypes = append(s.coreTypes, t)
		case !d.Sort.Core && d.Sort.Kind == bin.SortType:
			t, err := o.typ(d.Idx)
			if err != nil {
				return err
			}
			s.types = append(s.types, t)
		case !d.Sort.Core && d.Sort.Kind == bin.SortComponent:
			c, err := idx(o.components, d.Idx, "component")
			if err != nil {
				return err
			}
			s.components = append(s.components, c)
		default:
			return fmt.Errorf("outer alias of a %s is not allowed", d.Sort)
		}
	}
	return nil
}

func (l *linker) opts(s *scope, opts []bin.CanonOpt) (canonOpts, error) {
	o := canonOpts{table: s.table}
	for _, op := range opts {
		switch op.Kind {
		case bin.OptUTF8, bin.OptUTF16, bin.OptLatin1:
			o.encoding = op.Kind
		case bin.OptMemory:
			m, err := idx(s.coreMemories, op.Idx, "core memory")
			if err != nil {
				return o, err
			}
			o.memory = &m
		case bin.OptRealloc:
			f, err := idx(s.coreFuncs, op.Idx, "core func")
			if err != nil {
				return o, err
			}
			o.realloc = &f
		case bin.OptPostReturn:
			f, err := idx(s.coreFuncs, op.Idx, "core func")
			if err != nil {
				return o, err
			}
			o.postReturn = &f
		default:
			return o, errors.New("async canonical options are not supported")
		}
	}
	return o, nil
}

func (l *linker) canon(d *bin.CanonDef, s *scope) error {
	switch d.Op {
	case bin.CanonLift:
		f, err := idx(s.coreFuncs, d.Func, "core func")
		if err != nil {
			return err
		}
		t, err := s.typ(d.Type)
		if err != nil {
			return err
		}
		ft, ok := t.(*funcType)
		if !ok {
			return fmt.Errorf("canon lift with type %d, a %T", d.Type, t)
		}
		o, err := l.opts(s, d.Opts)
		if err != nil {
			return err
		}
		s.funcs = append(s.funcs, &cfunc{typ: ft, lift: &f, opts: o, paramsT: tupleOf(ft.params), resultsT: tupleOf(ft.results)})
	case bin.CanonLower:
		f, err := idx(s.funcs, d.Func, "func")
		if err != nil {
			return err
		}
		if f.lift == nil && f.host == nil {
			return fmt.Errorf("lowering %s, a function neither fungi nor the component provides", f.name)
		}
		o, err := l.opts(s, d.Opts)
		if err != nil {
			return err
		}
		params, results := lowerSignature(f.typ)
		s.coreFuncs = append(s.coreFuncs, l.addHost(hostSpec{kind: bin.CanonLower, fn: f, opts: o, params: params, result: results}))
	case bin.CanonResourceNew, bin.CanonResourceDrop, bin.CanonResourceRep:
		t, err := s.typ(d.Type)
		if err != nil {
			return err
		}
		r, ok := t.(*resourceType)
		if !ok {
			return fmt.Errorf("resource built-in on type %d, a %T", d.Type, t)
		}
		if d.Op != bin.CanonResourceDrop && (!r.guest || r.impl != s.table) {
			// resource.drop takes any resource; new and rep only the
			// component's own (the component model validates so).
			return fmt.Errorf("resource.new or resource.rep on %s, a resource this component does not define", r.name)
		}
		h := hostSpec{kind: d.Op, res: r, opts: canonOpts{table: s.table}, params: []coreType{ci32}}
		if d.Op != bin.CanonResourceDrop {
			h.result = []coreType{ci32}
		}
		s.coreFuncs = append(s.coreFuncs, l.addHost(h))
	}
	return nil
}

// lowerSignature is the core signature of a lowered function: flat params
// (or one pointer past 16), flat result (or a return pointer past 1).
func lowerSignature(ft *funcType) (params, results []coreType) {
	params = flatOf(ft.params)
	if len(params) > maxFlatParams {
		params = []coreType{ci32}
	}
	results = flatOf(ft.results)
	if len(results) > maxFlatResults {
		params = append(params, ci32)
		results = nil
	}
	return params, results
}

const (
	maxFlatParams  = 16
	maxFlatResults = 1
)

func flatOf(ts []*vtype) []coreType {
	var out []coreType
	for _, t := range ts {
		t.layout()
		out = append(out, t.flat...)
	}
	return out
}

// missingError lists what the component imports and fungi does not provide.
func (l *linker) missingError() error {
	if len(l.missing) == 0 {
		return nil
	}
	var names []string
	for n := range l.missing {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fs := l.missing[n]
		sort.Strings(fs)
		fmt.Fprintf(&b, "\n  %s: %s", n, strings.Join(fs, ", "))
	}
	return fmt.Errorf("the component imports what fungi does not provide (fungi serves WASI 0.2.x io, clocks, random, cli, filesystem, sockets and http; rebuild the component against those):%s", b.String())
}
