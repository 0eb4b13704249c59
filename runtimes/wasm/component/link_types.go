package component

import (
	"fmt"

	bin "github.com/fungi-go/fungi/runtimes/wasm/component/internal/binary"
)

// Resolving type definitions while linking: WIT value types, function,
// instance and resource types.

// resolveVal resolves a value type reference in s.
func resolveVal(s *scope, v bin.ValType) (*vtype, error) {
	if v.Prim != 0 {
		t, ok := primTypes[v.Prim]
		if !ok {
			return nil, fmt.Errorf("value type %#x is not supported", v.Prim)
		}
		return t, nil
	}
	t, err := s.typ(v.Idx)
	if err != nil {
		return nil, err
	}
	vt, ok := t.(*vtype)
	if !ok {
		return nil, fmt.Errorf("type %d is a %T, not a value type", v.Idx, t)
	}
	return vt, nil
}

func resolveOpt(s *scope, v *bin.ValType) (*vtype, error) {
	if v == nil {
		return nil, nil
	}
	return resolveVal(s, *v)
}

func resolveType(s *scope, td *bin.TypeDef, name string) (any, error) {
	switch td.Kind {
	case bin.TypePrim:
		return resolveVal(s, bin.ValType{Prim: td.Prim})
	case bin.TypeRecord:
		t := &vtype{kind: kRecord}
		for _, f := range td.Fields {
			ft, err := resolveVal(s, f.Type)
			if err != nil {
				return nil, err
			}
			t.fields = append(t.fields, ft)
			t.labels = append(t.labels, f.Name)
		}
		return t, nil
	case bin.TypeVariant:
		t := &vtype{kind: kVariant}
		for _, c := range td.Cases {
			ct, err := resolveOpt(s, c.Type)
			if err != nil {
				return nil, err
			}
			t.cases = append(t.cases, ct)
			t.labels = append(t.labels, c.Name)
		}
		return t, nil
	case bin.TypeList, bin.TypeOption:
		e, err := resolveVal(s, td.Elem)
		if err != nil {
			return nil, err
		}
		if td.Kind == bin.TypeList {
			return &vtype{kind: kList, elem: e}, nil
		}
		return &vtype{kind: kOption, elem: e, cases: []*vtype{nil, e}}, nil
	case bin.TypeTuple:
		t := &vtype{kind: kTuple}
		for _, v := range td.Types {
			ft, err := resolveVal(s, v)
			if err != nil {
				return nil, err
			}
			t.fields = append(t.fields, ft)
		}
		return t, nil
	case bin.TypeFlags:
		if len(td.Labels) > 32 {
			return nil, fmt.Errorf("flags with %d labels (at most 32)", len(td.Labels))
		}
		return &vtype{kind: kFlags, labels: td.Labels}, nil
	case bin.TypeEnum:
		return &vtype{kind: kEnum, labels: td.Labels}, nil
	case bin.TypeResult:
		ok, err := resolveOpt(s, td.Ok)
		if err != nil {
			return nil, err
		}
		e, err := resolveOpt(s, td.Err)
		if err != nil {
			return nil, err
		}
		return &vtype{kind: kResult, cases: []*vtype{ok, e}}, nil
	case bin.TypeOwn, bin.TypeBorrow:
		t, err := s.typ(td.Elem.Idx)
		if err != nil {
			return nil, err
		}
		r, ok := t.(*resourceType)
		if !ok {
			return nil, fmt.Errorf("own/borrow of type %d, a %T, not a resource", td.Elem.Idx, t)
		}
		k := kOwn
		if td.Kind == bin.TypeBorrow {
			k = kBorrow
		}
		return &vtype{kind: k, res: r}, nil
	case bin.TypeFunc:
		ft := &funcType{}
		for _, p := range td.Fields {
			pt, err := resolveVal(s, p.Type)
			if err != nil {
				return nil, err
			}
			ft.params = append(ft.params, pt)
			ft.paramNames = append(ft.paramNames, p.Name)
		}
		if td.Result != nil {
			rt, err := resolveVal(s, *td.Result)
			if err != nil {
				return nil, err
			}
			ft.results = []*vtype{rt}
		}
		for _, r := range td.Results {
			rt, err := resolveVal(s, r.Type)
			if err != nil {
				return nil, err
			}
			ft.results = append(ft.results, rt)
		}
		return ft, nil
	case bin.TypeInstance, bin.TypeComponent:
		inner := &scope{parent: s}
		it := &instanceType{exports: map[string]any{}}
		for _, d := range td.Decls {
			switch d.Kind {
			case bin.DeclCoreType:
				inner.coreTypes = append(inner.coreTypes, d.CoreType)
			case bin.DeclType:
				t, err := resolveType(inner, d.Type, "")
				if err != nil {
					return nil, err
				}
				inner.types = append(inner.types, t)
			case bin.DeclAlias:
				if d.Alias.Sort.Core || d.Alias.Sort.Kind != bin.SortType {
					return nil, fmt.Errorf("outer alias of a %s in a type is not supported", d.Alias.Sort)
				}
				o, err := inner.outer(d.Alias.Count)
				if err != nil {
					return nil, err
				}
				t, err := o.typ(d.Alias.Idx)
				if err != nil {
					return nil, err
				}
				inner.types = append(inner.types, t)
			case bin.DeclImport, bin.DeclExport:
				item, err := descItem(inner, d.Desc, d.Name)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", d.Name, err)
				}
				if d.Desc.Kind == bin.DescType {
					inner.types = append(inner.types, item)
				}
				if d.Kind == bin.DeclExport {
					it.exports[d.Name] = item
				}
			}
		}
		if td.Kind == bin.TypeComponent {
			return &componentType{}, nil
		}
		return it, nil
	case bin.TypeResource:
		r := &resourceType{name: name, guest: true}
		if td.ResourceDtor != nil {
			if int64(*td.ResourceDtor) >= int64(len(s.coreFuncs)) {
				return nil, fmt.Errorf("resource destructor %d out of range", *td.ResourceDtor)
			}
			d := s.coreFuncs[*td.ResourceDtor]
			r.dtor = &d
		}
		return r, nil
	}
	return nil, fmt.Errorf("type %#x is not supported (streams, futures and fixed lists are not)", td.Kind)
}

// descItem is the type-level item an extern descriptor declares.
func descItem(s *scope, d bin.ExternDesc, name string) (any, error) {
	switch d.Kind {
	case bin.DescType:
		if d.SubRes {
			return &resourceType{name: name}, nil
		}
		return s.typ(d.Idx)
	case bin.DescFunc:
		t, err := s.typ(d.Idx)
		if err != nil {
			return nil, err
		}
		ft, ok := t.(*funcType)
		if !ok {
			return nil, fmt.Errorf("func of type %d, a %T", d.Idx, t)
		}
		return ft, nil
	case bin.DescInstance:
		t, err := s.typ(d.Idx)
		if err != nil {
			return nil, err
		}
		it, ok := t.(*instanceType)
		if !ok {
			return nil, fmt.Errorf("instance of type %d, a %T", d.Idx, t)
		}
		return it, nil
	case bin.DescComponent:
		return &componentType{}, nil
	}
	return nil, fmt.Errorf("extern kind %#x (modules and values) is not supported", d.Kind)
}
