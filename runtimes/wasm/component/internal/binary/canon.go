package binary

import "fmt"

func (r *reader) canon() (*CanonDef, error) {
	op, err := r.byte()
	if err != nil {
		return nil, err
	}
	d := &CanonDef{Op: op}
	switch op {
	case CanonLift, CanonLower:
		var z byte
		if z, err = r.byte(); err != nil {
			return nil, err
		}
		if z != 0x00 {
			return nil, fmt.Errorf("canon %#x sub-opcode %#x", op, z)
		}
		if d.Func, err = r.u32(); err != nil {
			return nil, err
		}
		n, err := r.count(1)
		if err != nil {
			return nil, err
		}
		d.Opts = make([]CanonOpt, n)
		for i := range d.Opts {
			if d.Opts[i].Kind, err = r.byte(); err != nil {
				return nil, err
			}
			switch d.Opts[i].Kind {
			case OptUTF8, OptUTF16, OptLatin1, OptAsync:
			case OptMemory, OptRealloc, OptPostReturn, OptCallback:
				if d.Opts[i].Idx, err = r.u32(); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("canonical option %#x", d.Opts[i].Kind)
			}
		}
		if op == CanonLift {
			if d.Type, err = r.u32(); err != nil {
				return nil, err
			}
		}
	case CanonResourceNew, CanonResourceDrop, CanonResourceRep:
		d.Type, err = r.u32()
	default:
		return nil, fmt.Errorf("canonical built-in %#x is not supported (async and threads are not)", op)
	}
	return d, err
}

func (r *reader) export() (*ExportDef, error) {
	d := &ExportDef{}
	var err error
	if d.Name, err = r.externName(); err != nil {
		return nil, err
	}
	if d.Item, err = r.sortIdx(); err != nil {
		return nil, err
	}
	f, err := r.byte()
	if err != nil {
		return nil, err
	}
	switch f {
	case 0x00:
	case 0x01:
		ed, err := r.externDesc()
		if err != nil {
			return nil, err
		}
		d.Desc = &ed
	default:
		return nil, fmt.Errorf("export type flag %#x", f)
	}
	return d, nil
}
