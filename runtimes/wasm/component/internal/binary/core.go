package binary

func (r *reader) coreInstance() (*CoreInstanceDef, error) {
	d := &CoreInstanceDef{}
	switch tag := r.readByte(); tag {
	case 0x00:
		d.Module = r.readU32()
		d.Args = make([]CoreArg, r.readCount(3))
		for i := range d.Args {
			d.Args[i].Name = r.readName()
			if s := r.readByte(); s != CoreInstance {
				r.failf("core instantiate argument of sort %#x (want a core instance)", s)
			}
			d.Args[i].Instance = r.readU32()
		}
	case 0x01:
		d.Inline = true
		d.Exports = make([]CoreExport, r.readCount(3))
		for i := range d.Exports {
			d.Exports[i].Name = r.readName()
			d.Exports[i].Sort = r.readByte()
			d.Exports[i].Idx = r.readU32()
		}
	default:
		r.failf("core instance expression %#x", tag)
	}
	if r.err != nil {
		return nil, r.err
	}
	return d, nil
}

func (r *reader) coreValTypes() ([]byte, error) {
	out := make([]byte, r.readCount(1))
	for i := range out {
		switch c := r.readByte(); c {
		case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
			out[i] = c
		default:
			r.failf("core value type %#x", c)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

func (r *reader) coreType(depth int) (*CoreTypeDef, error) {
	if depth > MaxDepth {
		r.failf("types nested deeper than %d", MaxDepth)
		return nil, r.err
	}
	switch tag := r.readByte(); tag {
	case 0x60:
		d := &CoreTypeDef{}
		d.Params, _ = r.coreValTypes()
		d.Results, _ = r.coreValTypes()
		if r.err != nil {
			return nil, r.err
		}
		return d, nil
	case 0x50:
		n := r.readCount(2)
		for i := 0; i < n && r.err == nil; i++ {
			switch k := r.readByte(); k {
			case 0x00: // import: module name, name, description
				r.readName()
				r.readName()
				r.coreImportDesc()
			case 0x01:
				r.coreType(depth + 1)
			case 0x02: // alias: sort, 0x01 outer, count, idx
				r.readByte()
				if t := r.readByte(); t != 0x01 {
					r.failf("core alias target %#x in a module type", t)
				}
				r.readU32()
				r.readU32()
			case 0x03: // export: name, description
				r.readName()
				r.coreImportDesc()
			default:
				r.failf("module type declaration %#x", k)
			}
		}
		if r.err != nil {
			return nil, r.err
		}
		return &CoreTypeDef{Module: true}, nil
	default:
		r.failf("core type %#x (only function and module types are supported)", tag)
		return nil, r.err
	}
}

func (r *reader) limits() error {
	f := r.readByte()
	if f > 0x07 {
		r.failf("limits flag %#x", f)
	}
	r.readU32()
	if f&1 != 0 {
		r.readU32()
	}
	return r.err
}

func (r *reader) coreImportDesc() error {
	switch k := r.readByte(); k {
	case 0x00:
		r.readU32()
	case 0x01:
		r.readByte()
		r.limits()
	case 0x02:
		r.limits()
	case 0x03:
		r.readByte()
		r.readByte()
	default:
		r.failf("core import kind %#x", k)
	}
	return r.err
}
