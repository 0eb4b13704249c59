package binary

import (
	"fmt"
	"math"
)

func (r *reader) valType() (ValType, error) {
	if r.err != nil {
		return ValType{}, r.err
	}
	v, err := r.s33()
	if err != nil {
		r.fail(err)
		return ValType{}, r.err
	}
	if v >= 0 {
		if v > math.MaxUint32 {
			r.failf("type index out of range")
			return ValType{}, r.err
		}
		return ValType{Idx: uint32(v)}, nil
	}
	p := byte(v & 0x7f)
	if !isPrim(p) {
		r.failf("value type %#x", p)
		return ValType{}, r.err
	}
	return ValType{Prim: p}, nil
}

func isPrim(p byte) bool { return (p >= PrimString && p <= PrimBool) || p == PrimErrCtx }

func (r *reader) optValType() (*ValType, error) {
	switch f := r.readByte(); f {
	case 0x00:
		return nil, r.err
	case 0x01:
		v, err := r.valType()
		return &v, err
	default:
		r.failf("option flag %#x", f)
		return nil, r.err
	}
}

func (r *reader) fields() ([]Field, error) {
	fs := make([]Field, r.readCount(2))
	for i := range fs {
		fs[i].Name = r.readName()
		fs[i].Type, _ = r.valType()
	}
	if r.err != nil {
		return nil, r.err
	}
	return fs, nil
}

func (r *reader) labels() ([]string, error) {
	ls := make([]string, r.readCount(1))
	for i := range ls {
		ls[i] = r.readName()
	}
	if r.err != nil {
		return nil, r.err
	}
	return ls, nil
}

func (r *reader) typeDef(depth int) (*TypeDef, error) {
	if depth > MaxDepth {
		r.failf("types nested deeper than %d", MaxDepth)
		return nil, r.err
	}
	tag := r.readByte()
	d := &TypeDef{Kind: tag}
	switch {
	case r.err != nil:
	case isPrim(tag):
		d.Kind, d.Prim = TypePrim, tag
	case tag == TypeRecord:
		d.Fields, _ = r.fields()
	case tag == TypeVariant:
		d.Cases = make([]Case, r.readCount(3))
		for i := range d.Cases {
			d.Cases[i].Name = r.readName()
			d.Cases[i].Type, _ = r.optValType()
			if refines := r.readByte(); refines != 0 {
				r.failf("variant case refinements are not supported")
			}
		}
	case tag == TypeList, tag == TypeOption:
		d.Elem, _ = r.valType()
	case tag == TypeFixedList:
		d.Elem, _ = r.valType()
		d.Length = r.readU32()
	case tag == TypeTuple:
		d.Types = make([]ValType, r.readCount(1))
		for i := range d.Types {
			d.Types[i], _ = r.valType()
		}
	case tag == TypeFlags, tag == TypeEnum:
		d.Labels, _ = r.labels()
	case tag == TypeResult:
		d.Ok, _ = r.optValType()
		d.Err, _ = r.optValType()
	case tag == TypeOwn, tag == TypeBorrow:
		d.Elem.Idx = r.readU32()
	case tag == TypeStream, tag == TypeFuture:
		r.optValType()
	case tag == TypeFunc:
		d.Fields, _ = r.fields()
		switch k := r.readByte(); k {
		case 0x00:
			v, _ := r.valType()
			d.Result = &v
		case 0x01:
			d.Results, _ = r.fields()
		default:
			r.failf("result list %#x", k)
		}
	case tag == TypeComponent, tag == TypeInstance:
		n := r.readCount(2)
		d.Decls = make([]Decl, 0, min(n, 64))
		for i := 0; i < n && r.err == nil; i++ {
			decl, _ := r.decl(tag == TypeComponent, depth)
			if r.err != nil {
				r.err = fmt.Errorf("declaration %d: %w", i, r.err)
				break
			}
			d.Decls = append(d.Decls, decl)
		}
	case tag == TypeResource:
		if rep := r.readByte(); rep != 0x7f {
			r.failf("resource representation %#x (want i32)", rep)
		}
		switch f := r.readByte(); f {
		case 0x00:
		case 0x01:
			i := r.readU32()
			d.ResourceDtor = &i
		default:
			r.failf("resource destructor flag %#x", f)
		}
	default:
		r.failf("type %#x", tag)
	}
	if r.err != nil {
		return nil, r.err
	}
	return d, nil
}

func (r *reader) decl(component bool, depth int) (Decl, error) {
	k := r.readByte()
	d := Decl{Kind: k}
	switch {
	case r.err != nil:
	case k == DeclCoreType:
		d.CoreType, _ = r.coreType(depth + 1)
	case k == DeclType:
		d.Type, _ = r.typeDef(depth + 1)
	case k == DeclAlias:
		d.Alias, _ = r.alias()
		if r.err == nil && d.Alias.Target != AliasOuter {
			r.failf("only outer aliases are allowed in a type")
		}
	case k == DeclImport && !component:
		r.failf("an import in an instance type")
	case k == DeclImport, k == DeclExport:
		d.Name, _ = r.externName()
		d.Desc, _ = r.externDesc()
	default:
		r.failf("declaration kind %#x", k)
	}
	return d, r.err
}

func (r *reader) externDesc() (ExternDesc, error) {
	k := r.readByte()
	d := ExternDesc{Kind: k}
	switch {
	case r.err != nil:
	case k == DescModule:
		if c := r.readByte(); c != 0x11 {
			r.failf("module extern descriptor %#x", c)
		}
		d.Idx = r.readU32()
	case k == DescFunc, k == DescComponent, k == DescInstance:
		d.Idx = r.readU32()
	case k == DescValue:
		switch b := r.readByte(); b {
		case 0x00:
			d.Idx = r.readU32()
		case 0x01:
			v, _ := r.valType()
			d.ValueTyp = &v
		default:
			r.failf("value bound %#x", b)
		}
	case k == DescType:
		switch b := r.readByte(); b {
		case 0x00:
			d.Idx = r.readU32()
		case 0x01:
			d.SubRes = true
		default:
			r.failf("type bound %#x", b)
		}
	default:
		r.failf("extern descriptor %#x", k)
	}
	return d, r.err
}
