package binary

func (r *reader) canon() (*CanonDef, error) {
	d := &CanonDef{Op: r.readByte()}
	switch d.Op {
	case CanonLift, CanonLower:
		if z := r.readByte(); z != 0x00 {
			r.failf("canon %#x sub-opcode %#x", d.Op, z)
		}
		d.Func = r.readU32()
		d.Opts = make([]CanonOpt, r.readCount(1))
		for i := range d.Opts {
			d.Opts[i].Kind = r.readByte()
			switch d.Opts[i].Kind {
			case OptUTF8, OptUTF16, OptLatin1, OptAsync:
			case OptMemory, OptRealloc, OptPostReturn, OptCallback:
				d.Opts[i].Idx = r.readU32()
			default:
				r.failf("canonical option %#x", d.Opts[i].Kind)
			}
		}
		if d.Op == CanonLift {
			d.Type = r.readU32()
		}
	case CanonResourceNew, CanonResourceDrop, CanonResourceRep:
		d.Type = r.readU32()
	default:
		r.failf("canonical built-in %#x is not supported (async and threads are not)", d.Op)
	}
	if r.err != nil {
		return nil, r.err
	}
	return d, nil
}

func (r *reader) export() (*ExportDef, error) {
	d := &ExportDef{}
	d.Name, _ = r.externName()
	d.Item, _ = r.sortIdx()
	switch f := r.readByte(); f {
	case 0x00:
	case 0x01:
		ed, err := r.externDesc()
		if err != nil {
			return nil, err
		}
		d.Desc = &ed
	default:
		r.failf("export type flag %#x", f)
	}
	if r.err != nil {
		return nil, r.err
	}
	return d, nil
}
