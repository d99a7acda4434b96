package weights

import (
	"gorgonia.org/tensor"
)

// Source is what a View reads tensors from. *Store implements it; tests may plug in their own.
type Source interface {
	// Tensor returns the tensor with the full checkpoint name as float32; when shape is given
	// the stored shape must match it exactly.
	Tensor(name string, shape ...int) (*tensor.Dense, error)
	// Has reports whether a tensor with the full name is present.
	Has(name string) bool
	// Shape returns a tensor's stored shape, ok false when absent or unknown.
	Shape(name string) (shape []int, ok bool)
}

// View is a name prefix over a Source, the handle model constructors walk down with Sub:
//
//	w.Sub("down_blocks.0").Sub("resnets.0").Tensor("conv1.weight", 320, 320, 3, 3)
//
// asks the Source for "down_blocks.0.resnets.0.conv1.weight". The zero View has no Source and
// every Tensor call on it fails.
type View struct {
	src    Source
	prefix string
	half   bool // PreferHalf regardless of the Source (Half)
	bf16   bool // PreferBF16 regardless of the Source (BF16)
}

// NewView returns a View of src with an empty prefix.
func NewView(src Source) View { return View{src: src} }

// Sub returns the View under name: its prefix is Prefix()+"."+name (or just name at the top).
func (v View) Sub(name string) View {
	return View{src: v.src, prefix: v.full(name), half: v.half, bf16: v.bf16}
}

// Prefix returns the View's prefix, "" at the top.
func (v View) Prefix() string { return v.prefix }

// Source returns the Source the View reads from.
func (v View) Source() Source { return v.src }

// Tensor returns the tensor name under the View's prefix, strictly: a missing tensor or a shape
// different from shape (when given) is an error naming the file, the full name and both shapes.
func (v View) Tensor(name string, shape ...int) (*tensor.Dense, error) {
	if v.src == nil {
		return nil, errNoSource(v.full(name))
	}
	return v.src.Tensor(v.full(name), shape...)
}

// Has reports whether the tensor name under the View's prefix is present.
func (v View) Has(name string) bool { return v.src != nil && v.src.Has(v.full(name)) }

// Shape returns the stored shape of the tensor name under the View's prefix.
func (v View) Shape(name string) (shape []int, ok bool) {
	if v.src == nil {
		return nil, false
	}
	return v.src.Shape(v.full(name))
}

func (v View) full(name string) string {
	if v.prefix == "" {
		return name
	}
	if name == "" {
		return v.prefix
	}
	return v.prefix + "." + name
}

type errNoSource string

func (e errNoSource) Error() string {
	return "weights: tensor \"" + string(e) + "\" requested from a View with no Source"
}

// StoredDtype returns the element type the tensor name under the View's prefix has in its file
// ("F32", "F16", "BF16", …), or "" when it is absent or the Source is not a file (synthetic or
// in-memory weights). Layers use it to keep 16-bit tensors as they are stored (see
// Store.StoredDtype).
func (v View) StoredDtype(name string) string {
	if s, ok := v.src.(interface{ StoredDtype(string) string }); ok {
		return s.StoredDtype(v.full(name))
	}
	return ""
}
