package binary

import "fmt"

func (r *reader) coreInstance() (*CoreInstanceDef, error) {
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	d := &CoreInstanceDef{}
	switch tag {
	case 0x00:
		if d.Module, err = r.u32(); err != nil {
			return nil, err
		}
		n, err := r.count(3)
		if err != nil {
			return nil, err
		}
		d.Args = make([]CoreArg, n)
		for i := range d.Args {
			if d.Args[i].Name, err = r.name(); err != nil {
				return nil, err
			}
			s, err := r.byte()
			if err != nil {
				return nil, err
			}
			if s != CoreInstance {
				return nil, fmt.Errorf("core instantiate argument of sort %#x (want a core instance)", s)
			}
			if d.Args[i].Instance, err = r.u32(); err != nil {
				return nil, err
			}
		}
	case 0x01:
		d.Inline = true
		n, err := r.count(3)
		if err != nil {
			return nil, err
		}
		d.Exports = make([]CoreExport, n)
		for i := range d.Exports {
			if d.Exports[i].Name, err = r.name(); err != nil {
				return nil, err
			}
			if d.Exports[i].Sort, err = r.byte(); err != nil {
				return nil, err
			}
			if d.Exports[i].Idx, err = r.u32(); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("core instance expression %#x", tag)
	}
	return d, nil
}

func (r *reader) coreValTypes() ([]byte, error) {
	n, err := r.count(1)
	if err != nil {
		return nil, err
	}
	out := make([]byte, n)
	for i := range out {
		c, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch c {
		case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		default:
			return nil, fmt.Errorf("core value type %#x", c)
		}
		out[i] = c
	}
	return out, nil
}

func (r *reader) coreType(depth int) (*CoreTypeDef, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("types nested deeper than %d", MaxDepth)
	}
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case 0x60:
		d := &CoreTypeDef{}
		if d.Params, err = r.coreValTypes(); err != nil {
			return nil, err
		}
		if d.Results, err = r.coreValTypes(); err != nil {
			return nil, err
		}
		return d, nil
	case 0x50:
		n, err := r.count(2)
		if err != nil {
			return nil, err
		}
		for i := 0; i < n; i++ {
			k, err := r.byte()
			if err != nil {
				return nil, err
			}
			switch k {
			case 0x00: // import
				if _, err = r.name(); err == nil {
					if _, err = r.name(); err == nil {
						err = r.coreImportDesc()
					}
				}
			case 0x01:
				_, err = r.coreType(depth + 1)
			case 0x02: // alias: sort, 0x01 outer, count, idx
				if _, err = r.byte(); err == nil {
					var t byte
					if t, err = r.byte(); err == nil && t != 0x01 {
						err = fmt.Errorf("core alias target %#x in a module type", t)
					}
					if err == nil {
						if _, err = r.u32(); err == nil {
							_, err = r.u32()
						}
					}
				}
			case 0x03:
				if _, err = r.name(); err == nil {
					err = r.coreImportDesc()
				}
			default:
				return nil, fmt.Errorf("module type declaration %#x", k)
			}
			if err != nil {
				return nil, err
			}
		}
		return &CoreTypeDef{Module: true}, nil
	}
	return nil, fmt.Errorf("core type %#x (only function and module types are supported)", tag)
}

func (r *reader) limits() error {
	f, err := r.byte()
	if err != nil {
		return err
	}
	if f > 0x07 {
		return fmt.Errorf("limits flag %#x", f)
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if f&1 != 0 {
		_, err = r.u32()
	}
	return err
}

func (r *reader) coreImportDesc() error {
	k, err := r.byte()
	if err != nil {
		return err
	}
	switch k {
	case 0x00:
		_, err = r.u32()
	case 0x01:
		if _, err = r.byte(); err == nil {
			err = r.limits()
		}
	case 0x02:
		err = r.limits()
	case 0x03:
		if _, err = r.byte(); err == nil {
			_, err = r.byte()
		}
	default:
		err = fmt.Errorf("core import kind %#x", k)
	}
	return err
}
