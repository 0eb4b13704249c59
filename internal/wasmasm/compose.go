package wasmasm

// Instantiate embeds inner as a nested component and instantiates it with
// no arguments, as wac does for a part that imports nothing; it returns the
// new instance's index, whose exports AliasFunc and AliasType then take.
func (c *Component) Instantiate(inner []byte) uint32 {
	c.sections = append(c.sections,
		Section(4, inner...),
		Section(5, Cat(U32([]byte{1, 0x00}, c.comps), []byte{0})...))
	c.comps++
	c.instances++
	return c.instances - 1
}
