package checkpoint

// PreferBF16 reports whether the file was opened with weights.WithBF16.
func (c *component) PreferBF16() bool { return c.f.store.PreferBF16() }

// TensorBF16 is Tensor as bfloat16 bits.
func (c *component) TensorBF16(name string, shape ...int) ([]uint16, error) {
	full, err := c.resolve(name)
	if err != nil {
		return nil, err
	}
	stored, _, err := c.shapeFor(full, shape)
	if err != nil {
		return nil, err
	}
	return c.f.store.TensorBF16(full, stored...)
}
