package weights

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"gorgonia.org/tensor"
)

// Half weights: an opt-in mode in which the big weight matrices (Linear and Conv2d weights,
// which model code asks for through TensorHalf) are kept as IEEE 754 binary16 bits, halving
// their memory. Everything else (norms, biases, embeddings) is still handed out as float32 by
// Tensor.

// WithHalf makes the Store prefer half-precision weights: its PreferHalf reports true, so layers
// built from it (internal/nn's Linear and Conv2d) fetch their weight matrices with TensorHalf and
// keep them as fp16 in memory, widening them while packing. F16 files hand out their stored
// halves as they are (aliasing the mapping where possible); F32, BF16 and other files are
// rounded to fp16 once, at load, to nearest with ties to even (as torch's .half()).
func WithHalf() Option { return func(o *options) { o.half = true } }

// HalfSource is a Source that can hand out tensors as IEEE half bits. *Store implements it;
// a View over a Source that does not is never PreferHalf and converts in TensorHalf.
type HalfSource interface {
	Source
	// PreferHalf reports whether the caller asked for half weights (WithHalf).
	PreferHalf() bool
	// TensorHalf is Tensor with the values as IEEE 754 binary16 bits, row-major.
	TensorHalf(name string, shape ...int) ([]uint16, error)
}

// PreferHalf reports whether the Store was opened (or made) with WithHalf.
func (s *Store) PreferHalf() bool { return s.half }

// TensorHalf returns the tensor called name as IEEE 754 binary16 bits (row-major), with the same
// strict checks as Tensor. F16 data is returned unchanged (aliasing a memory-mapped file when
// aligned, so valid until Close); any other dtype is rounded to nearest, ties to even. It works
// whether or not the Store prefers half weights.
func (s *Store) TensorHalf(name string, shape ...int) ([]uint16, error) {
	return s.tensor16(name, shape, fmtF16)
}

// tensor16 is TensorHalf for the 16-bit format f.
func (s *Store) tensor16(name string, shape []int, f halfFormat) ([]uint16, error) {
	stored, err := s.request(name, shape)
	if err != nil {
		return nil, err
	}
	var h []uint16
	if hb, ok := s.be.(halfBackend); ok {
		h, err = hb.loadHalf(name, stored, f)
	} else {
		var t *tensor.Dense
		if t, err = s.be.load(name, stored); err == nil {
			h = to16(t.Float32s()[:numElements(stored)], f)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("weights: tensor %q in %s: %w", name, s.desc, err)
	}
	s.loaded(name, 2*int64(len(h)))
	return h, nil
}

// LoadedBytes returns the bytes of tensor data the Store has handed out, each tensor counted
// once at the size of its latest fetch: 4 per value from Tensor, 2 per value from TensorHalf.
// Data aliasing a memory-mapped file counts too. It measures what a model built from the
// Store holds in weights.
func (s *Store) LoadedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, b := range s.bytes {
		n += b
	}
	return n
}

// halfFormat is a 16-bit float format: IEEE half (fmtF16) or bfloat16 (fmtBF16).
type halfFormat struct {
	dt    dtype                // the file dtype stored in this format
	round func(float32) uint16 // to nearest even
}

var (
	fmtF16  = halfFormat{dtF16, Float32ToHalf}
	fmtBF16 = halfFormat{dtBF16, Float32ToBF16}
)

// halfBackend is a backend that can produce 16-bit floats directly (without a float32 copy).
type halfBackend interface {
	loadHalf(name string, shape []int, f halfFormat) ([]uint16, error)
}

func (b *fileBackend) loadHalf(name string, shape []int, f halfFormat) ([]uint16, error) {
	e := b.m[name]
	n := numElements(shape)
	if n <= 0 {
		return nil, fmt.Errorf("shape %s has no elements", formatShape(shape))
	}
	if e.dt == f.dt && e.strides == nil && len(e.data) >= 2*n {
		if hostLittleEndian && uintptr(unsafe.Pointer(&e.data[0]))%2 == 0 {
			return unsafe.Slice((*uint16)(unsafe.Pointer(&e.data[0])), n), nil
		}
		out := make([]uint16, n)
		for i := range out {
			out[i] = binary.LittleEndian.Uint16(e.data[2*i:])
		}
		if b.mapped {
			dropPages(e.data[:2*n])
		}
		return out, nil
	}
	if e.dt == f.dt { // strided, stored in the format: gather the values unchanged
		out := make([]uint16, n)
		forEachStrided(shape, e.strides, func(i, off int) {
			out[i] = binary.LittleEndian.Uint16(e.data[2*off:])
		})
		return out, nil
	}
	// Other dtypes: widen in chunks and round, so no full float32 copy is ever held. The file's
	// pages are then dropped from memory: the halves replace them (this is what makes half
	// weights halve the resident memory of a mapped float32 file).
	if b.mapped {
		defer dropPages(e.data[:min(len(e.data), e.dt.size()*e.span(shape))])
	}
	out := make([]uint16, n)
	var buf [4096]float32
	sz := e.dt.size()
	if e.strides == nil {
		for lo := 0; lo < n; lo += len(buf) {
			c := buf[:min(len(buf), n-lo)]
			decode(c, e.dt, e.data[lo*sz:])
			for j, v := range c {
				out[lo+j] = f.round(v)
			}
		}
		return out, nil
	}
	forEachStrided(shape, e.strides, func(i, off int) {
		decode(buf[:1], e.dt, e.data[off*sz:])
		out[i] = f.round(buf[0])
	})
	return out, nil
}

// span is the number of elements from the entry's first to one past its last (for strides).
func (e *entry) span(shape []int) int {
	if e.strides == nil {
		return numElements(shape)
	}
	last := 0
	for k, d := range shape {
		last += (d - 1) * e.strides[k]
	}
	return last + 1
}

// forEachStrided calls f with every row-major index i of shape and its strided element offset.
func forEachStrided(shape, strides []int, f func(i, off int)) {
	n := numElements(shape)
	idx := make([]int, len(shape))
	for i := 0; i < n; i++ {
		off := 0
		for k, v := range idx {
			off += v * strides[k]
		}
		f(i, off)
		for k := len(idx) - 1; k >= 0; k-- {
			idx[k]++
			if idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
	}
}

// to16 rounds every value of src to the 16-bit format f.
func to16(src []float32, f halfFormat) []uint16 {
	out := make([]uint16, len(src))
	for i, v := range src {
		out[i] = f.round(v)
	}
	return out
}

// PreferHalf reports whether layers built from the View should keep their weight matrices as
// half bits: the View was made by Half, or its Source is a Store opened WithHalf.
func (v View) PreferHalf() bool {
	if v.half {
		return true
	}
	hs, ok := v.src.(HalfSource)
	return ok && hs.PreferHalf()
}

// Half returns v (and every View Sub makes from it) preferring half weights, for Sources not
// opened WithHalf, such as NewSynthetic or FromTensors Stores.
func (v View) Half() View {
	v.half = true
	return v
}

// TensorHalf returns the tensor name under the View's prefix as IEEE half bits, with the checks
// of Tensor. A Source that is not a HalfSource is read as float32 and rounded to nearest even.
func (v View) TensorHalf(name string, shape ...int) ([]uint16, error) {
	if v.src == nil {
		return nil, errNoSource(v.full(name))
	}
	if hs, ok := v.src.(HalfSource); ok {
		return hs.TensorHalf(v.full(name), shape...)
	}
	t, err := v.src.Tensor(v.full(name), shape...)
	if err != nil {
		return nil, err
	}
	return to16(t.Float32s()[:t.Size()], fmtF16), nil
}
