package wasmasm

// Instantiate embeds inner as a nested component and instantiates it with
// no arguments, as wac does for a part that imports nothing; it returns the
// new instance's index, whose exports AliasFunc and AliasType then take.
func (c *Component) Instantiate(inner []byte) uint32 {
	return c.InstantiateWith(inner)
}

// InstanceArg gives a nested component's import Name an instance of the
// outer component.
type InstanceArg struct {
	Name     string
	Instance uint32
}

// InstantiateWith embeds inner and instantiates it with args, as wac
// plugs one part's exports into another's imports.
func (c *Component) InstantiateWith(inner []byte, args ...InstanceArg) uint32 {
	items := make([][]byte, len(args))
	for i, a := range args {
		items[i] = U32(Cat(Str(a.Name), []byte{0x05}), a.Instance)
	}
	c.sections = append(c.sections,
		Section(4, inner...),
		Section(5, Cat(U32([]byte{1, 0x00}, c.comps), Vec(len(items), items...))...))
	c.comps++
	c.instances++
	return c.instances - 1
}
