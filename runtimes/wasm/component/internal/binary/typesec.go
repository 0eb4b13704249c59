package binary

import (
	"errors"
	"fmt"
	"math"
)

func (r *reader) valType() (ValType, error) {
	v, err := r.s33()
	if err != nil {
		return ValType{}, err
	}
	if v >= 0 {
		if v > math.MaxUint32 {
			return ValType{}, errors.New("type index out of range")
		}
		return ValType{Idx: uint32(v)}, nil
	}
	p := byte(v & 0x7f)
	if !isPrim(p) {
		return ValType{}, fmt.Errorf("value type %#x", p)
	}
	return ValType{Prim: p}, nil
}

func isPrim(p byte) bool { return (p >= PrimString && p <= PrimBool) || p == PrimErrCtx }

func (r *reader) optValType() (*ValType, error) {
	f, err := r.byte()
	if err != nil {
		return nil, err
	}
	switch f {
	case 0x00:
		return nil, nil
	case 0x01:
		v, err := r.valType()
		return &v, err
	}
	return nil, fmt.Errorf("option flag %#x", f)
}

func (r *reader) fields() ([]Field, error) {
	n, err := r.count(2)
	if err != nil {
		return nil, err
	}
	fs := make([]Field, n)
	for i := range fs {
		if fs[i].Name, err = r.name(); err != nil {
			return nil, err
		}
		if fs[i].Type, err = r.valType(); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

func (r *reader) labels() ([]string, error) {
	n, err := r.count(1)
	if err != nil {
		return nil, err
	}
	ls := make([]string, n)
	for i := range ls {
		if ls[i], err = r.name(); err != nil {
			return nil, err
		}
	}
	return ls, nil
}

func (r *reader) typeDef(depth int) (*TypeDef, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("types nested deeper than %d", MaxDepth)
	}
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	d := &TypeDef{Kind: tag}
	switch {
	case isPrim(tag):
		d.Kind, d.Prim = TypePrim, tag
	case tag == TypeRecord:
		d.Fields, err = r.fields()
	case tag == TypeVariant:
		var n int
		if n, err = r.count(3); err != nil {
			return nil, err
		}
		d.Cases = make([]Case, n)
		for i := range d.Cases {
			if d.Cases[i].Name, err = r.name(); err != nil {
				return nil, err
			}
			if d.Cases[i].Type, err = r.optValType(); err != nil {
				return nil, err
			}
			var refines byte
			if refines, err = r.byte(); err != nil {
				return nil, err
			}
			if refines != 0 {
				return nil, errors.New("variant case refinements are not supported")
			}
		}
	case tag == TypeList, tag == TypeOption:
		d.Elem, err = r.valType()
	case tag == TypeFixedList:
		if d.Elem, err = r.valType(); err == nil {
			d.Length, err = r.u32()
		}
	case tag == TypeTuple:
		var n int
		if n, err = r.count(1); err != nil {
			return nil, err
		}
		d.Types = make([]ValType, n)
		for i := range d.Types {
			if d.Types[i], err = r.valType(); err != nil {
				return nil, err
			}
		}
	case tag == TypeFlags, tag == TypeEnum:
		d.Labels, err = r.labels()
	case tag == TypeResult:
		if d.Ok, err = r.optValType(); err == nil {
			d.Err, err = r.optValType()
		}
	case tag == TypeOwn, tag == TypeBorrow:
		d.Elem.Idx, err = r.u32()
	case tag == TypeStream, tag == TypeFuture:
		_, err = r.optValType()
	case tag == TypeFunc:
		if d.Fields, err = r.fields(); err != nil {
			return nil, err
		}
		var k byte
		if k, err = r.byte(); err != nil {
			return nil, err
		}
		switch k {
		case 0x00:
			v, err := r.valType()
			if err != nil {
				return nil, err
			}
			d.Result = &v
		case 0x01:
			d.Results, err = r.fields()
		default:
			return nil, fmt.Errorf("result list %#x", k)
		}
	case tag == TypeComponent, tag == TypeInstance:
		var n int
		if n, err = r.count(2); err != nil {
			return nil, err
		}
		d.Decls = make([]Decl, 0, min(n, 64))
		for i := 0; i < n; i++ {
			decl, err := r.decl(tag == TypeComponent, depth)
			if err != nil {
				return nil, fmt.Errorf("declaration %d: %w", i, err)
			}
			d.Decls = append(d.Decls, decl)
		}
	case tag == TypeResource:
		var rep byte
		if rep, err = r.byte(); err != nil {
			return nil, err
		}
		if rep != 0x7f {
			return nil, fmt.Errorf("resource representation %#x (want i32)", rep)
		}
		var f byte
		if f, err = r.byte(); err != nil {
			return nil, err
		}
		if f == 0x01 {
			var i uint32
			if i, err = r.u32(); err != nil {
				return nil, err
			}
			d.ResourceDtor = &i
		} else if f != 0x00 {
			return nil, fmt.Errorf("resource destructor flag %#x", f)
		}
	default:
		return nil, fmt.Errorf("type %#x", tag)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

func (r *reader) decl(component bool, depth int) (Decl, error) {
	k, err := r.byte()
	if err != nil {
		return Decl{}, err
	}
	d := Decl{Kind: k}
	switch k {
	case DeclCoreType:
		d.CoreType, err = r.coreType(depth + 1)
	case DeclType:
		d.Type, err = r.typeDef(depth + 1)
	case DeclAlias:
		d.Alias, err = r.alias()
		if err == nil && d.Alias.Target != AliasOuter {
			err = errors.New("only outer aliases are allowed in a type")
		}
	case DeclImport, DeclExport:
		if k == DeclImport && !component {
			return d, errors.New("an import in an instance type")
		}
		if d.Name, err = r.externName(); err == nil {
			d.Desc, err = r.externDesc()
		}
	default:
		err = fmt.Errorf("declaration kind %#x", k)
	}
	return d, err
}

func (r *reader) externDesc() (ExternDesc, error) {
	k, err := r.byte()
	if err != nil {
		return ExternDesc{}, err
	}
	d := ExternDesc{Kind: k}
	switch k {
	case DescModule:
		var c byte
		if c, err = r.byte(); err == nil && c != 0x11 {
			err = fmt.Errorf("module extern descriptor %#x", c)
		}
		if err == nil {
			d.Idx, err = r.u32()
		}
	case DescFunc, DescComponent, DescInstance:
		d.Idx, err = r.u32()
	case DescValue:
		var b byte
		if b, err = r.byte(); err != nil {
			break
		}
		switch b {
		case 0x00:
			d.Idx, err = r.u32()
		case 0x01:
			var v ValType
			v, err = r.valType()
			d.ValueTyp = &v
		default:
			err = fmt.Errorf("value bound %#x", b)
		}
	case DescType:
		var b byte
		if b, err = r.byte(); err != nil {
			break
		}
		switch b {
		case 0x00:
			d.Idx, err = r.u32()
		case 0x01:
			d.SubRes = true
		default:
			err = fmt.Errorf("type bound %#x", b)
		}
	default:
		err = fmt.Errorf("extern descriptor %#x", k)
	}
	return d, err
}
