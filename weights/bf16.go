package weights

import "math"

// bf16 weights: the half-weights mode (half.go) with bfloat16 instead of IEEE half bits. A Store
// opened WithBF16 (or a View made with View.BF16) reports PreferBF16, and model layers then
// fetch their Linear and Conv2d weight matrices with TensorBF16: BF16 files as stored (aliasing
// the mapping where possible), F32 and F16 files rounded to bf16 once, at load, to nearest even
// (as torch's .bfloat16()). bf16 keeps float32's exponent range, so weights never overflow; it
// has 8 significant bits against fp16's 11.

// WithBF16 makes the Store prefer bfloat16 weights: its PreferBF16 reports true, so layers built
// from it (internal/nn's Linear and Conv2d) keep their weight matrices as bf16 in memory.
func WithBF16() Option { return func(o *options) { o.bf16 = true } }

// PreferBF16 reports whether the Store was opened (or made) with WithBF16.
func (s *Store) PreferBF16() bool { return s.bf16 }

// TensorBF16 is TensorHalf with bfloat16 bits: BF16 data is returned unchanged (aliasing a
// memory-mapped file when aligned, so valid until Close); any other dtype is rounded to
// nearest, ties to even.
func (s *Store) TensorBF16(name string, shape ...int) ([]uint16, error) {
	return s.tensor16(name, shape, fmtBF16)
}

// BF16Source is a Source that can hand out tensors as bfloat16 bits. *Store implements it.
type BF16Source interface {
	Source
	// PreferBF16 reports whether the caller asked for bf16 weights (WithBF16).
	PreferBF16() bool
	// TensorBF16 is Tensor with the values as bfloat16 bits, row-major.
	TensorBF16(name string, shape ...int) ([]uint16, error)
}

// PreferBF16 reports whether layers built from the View should keep their weight matrices as
// bf16: the View was made by BF16, or its Source is a Store opened WithBF16.
func (v View) PreferBF16() bool {
	if v.bf16 {
		return true
	}
	bs, ok := v.src.(BF16Source)
	return ok && bs.PreferBF16()
}

// BF16 returns v (and every View Sub makes from it) preferring bf16 weights, for Sources not
// opened WithBF16, such as NewSynthetic or FromTensors Stores.
func (v View) BF16() View {
	v.bf16 = true
	return v
}

// TensorBF16 returns the tensor name under the View's prefix as bfloat16 bits, with the checks
// of Tensor. A Source that is not a BF16Source is read as float32 and rounded to nearest even.
func (v View) TensorBF16(name string, shape ...int) ([]uint16, error) {
	if v.src == nil {
		return nil, errNoSource(v.full(name))
	}
	if bs, ok := v.src.(BF16Source); ok {
		return bs.TensorBF16(v.full(name), shape...)
	}
	t, err := v.src.Tensor(v.full(name), shape...)
	if err != nil {
		return nil, err
	}
	return to16(t.Float32s()[:t.Size()], fmtBF16), nil
}

// Float32ToBF16 rounds f to the nearest bfloat16 value (ties to even), as torch's .bfloat16()
// does: subnormals are kept, NaNs become the quiet NaN 0x7fc0 (with f's sign).
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16)&0x8000 | 0x7fc0
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}
