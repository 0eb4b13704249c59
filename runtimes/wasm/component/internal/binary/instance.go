package binary

func (r *reader) sort() (Sort, error) {
	k := r.readByte()
	if k == 0x00 {
		c := r.readByte()
		switch c {
		case CoreFunc, CoreTable, CoreMemory, CoreGlobal, CoreTypeSort, CoreModule, CoreInstance:
			return Sort{Core: true, Kind: c}, r.err
		}
		r.failf("core sort %#x", c)
		return Sort{}, r.err
	}
	if k < SortFunc || k > SortInstance {
		r.failf("sort %#x", k)
	}
	return Sort{Kind: k}, r.err
}

func (r *reader) sortIdx() (SortIdx, error) {
	s, _ := r.sort()
	i := r.readU32()
	return SortIdx{Sort: s, Idx: i}, r.err
}

func (r *reader) instance() (*InstanceDef, error) {
	d := &InstanceDef{}
	switch tag := r.readByte(); tag {
	case 0x00:
		d.Component = r.readU32()
	case 0x01:
		d.Inline = true
	default:
		r.failf("instance expression %#x", tag)
	}
	d.Args = make([]InstanceArg, r.readCount(3))
	for i := range d.Args {
		if d.Inline {
			d.Args[i].Name, _ = r.externName()
		} else {
			d.Args[i].Name = r.readName()
		}
		d.Args[i].Item, _ = r.sortIdx()
	}
	if r.err != nil {
		return nil, r.err
	}
	return d, nil
}

func (r *reader) alias() (*AliasDef, error) {
	s, _ := r.sort()
	d := &AliasDef{Sort: s, Target: r.readByte()}
	switch d.Target {
	case AliasExport, AliasCoreExport:
		d.Instance = r.readU32()
		d.Name = r.readName()
	case AliasOuter:
		d.Count = r.readU32()
		d.Idx = r.readU32()
	default:
		r.failf("alias target %#x", d.Target)
	}
	if r.err != nil {
		return nil, r.err
	}
	return d, nil
}

// externName reads importname'/exportname': a 0x00 or 0x01 discriminant
// (plain name or interface name; both are followed by the name alone).
func (r *reader) externName() (string, error) {
	if tag := r.readByte(); tag > 0x01 {
		r.failf("extern name tag %#x", tag)
	}
	return r.readName(), r.err
}
