package binary

import "fmt"

func (r *reader) sort() (Sort, error) {
	k, err := r.byte()
	if err != nil {
		return Sort{}, err
	}
	if k == 0x00 {
		c, err := r.byte()
		if err != nil {
			return Sort{}, err
		}
		switch c {
		case CoreFunc, CoreTable, CoreMemory, CoreGlobal, CoreTypeSort, CoreModule, CoreInstance:
			return Sort{Core: true, Kind: c}, nil
		}
		return Sort{}, fmt.Errorf("core sort %#x", c)
	}
	if k < SortFunc || k > SortInstance {
		return Sort{}, fmt.Errorf("sort %#x", k)
	}
	return Sort{Kind: k}, nil
}

func (r *reader) sortIdx() (SortIdx, error) {
	s, err := r.sort()
	if err != nil {
		return SortIdx{}, err
	}
	i, err := r.u32()
	return SortIdx{Sort: s, Idx: i}, err
}

func (r *reader) instance() (*InstanceDef, error) {
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	d := &InstanceDef{}
	switch tag {
	case 0x00:
		if d.Component, err = r.u32(); err != nil {
			return nil, err
		}
	case 0x01:
		d.Inline = true
	default:
		return nil, fmt.Errorf("instance expression %#x", tag)
	}
	n, err := r.count(3)
	if err != nil {
		return nil, err
	}
	d.Args = make([]InstanceArg, n)
	for i := range d.Args {
		if d.Inline {
			d.Args[i].Name, err = r.externName()
		} else {
			d.Args[i].Name, err = r.name()
		}
		if err != nil {
			return nil, err
		}
		if d.Args[i].Item, err = r.sortIdx(); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (r *reader) alias() (*AliasDef, error) {
	s, err := r.sort()
	if err != nil {
		return nil, err
	}
	d := &AliasDef{Sort: s}
	if d.Target, err = r.byte(); err != nil {
		return nil, err
	}
	switch d.Target {
	case AliasExport, AliasCoreExport:
		if d.Instance, err = r.u32(); err != nil {
			return nil, err
		}
		d.Name, err = r.name()
	case AliasOuter:
		if d.Count, err = r.u32(); err == nil {
			d.Idx, err = r.u32()
		}
	default:
		return nil, fmt.Errorf("alias target %#x", d.Target)
	}
	return d, err
}

// externName reads importname'/exportname': a 0x00 or 0x01 discriminant
// (plain name or interface name; both are followed by the name alone).
func (r *reader) externName() (string, error) {
	tag, err := r.byte()
	if err != nil {
		return "", err
	}
	if tag > 0x01 {
		return "", fmt.Errorf("extern name tag %#x", tag)
	}
	return r.name()
}
