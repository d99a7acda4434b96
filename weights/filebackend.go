package weights

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"gorgonia.org/tensor"
)

// dtype is a stored element type. Everything is handed out as float32.
type dtype uint8

const (
	dtF32 dtype = iota
	dtF16
	dtBF16
	dtF64
	dtI64
	dtI32
	dtI16
	dtI8
	dtU8
	dtBool
)

var dtypeNames = [...]string{"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"}
var dtypeSizes = [...]int{4, 2, 2, 8, 8, 4, 2, 1, 1, 1}

func (d dtype) String() string { return dtypeNames[d] }
func (d dtype) size() int      { return dtypeSizes[d] }

// hostLittleEndian says whether float32 file data can be aliased as-is.
var hostLittleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

// entry is one stored tensor: data starts at its first element; strides (in elements) are nil
// when it is contiguous in row-major order.
type entry struct {
	dt      dtype
	shape   []int
	data    []byte
	strides []int
}

// fileBackend is a parsed weights file: safetensors or PyTorch pickle.
type fileBackend struct {
	order  []string
	m      map[string]*entry
	mapped bool // entries alias a private file mapping (mapFile), not heap memory
}

func (b *fileBackend) names() []string { return append([]string(nil), b.order...) }

func (b *fileBackend) shape(name string) ([]int, bool) {
	e, ok := b.m[name]
	if !ok {
		return nil, false
	}
	return e.shape, true
}

func (b *fileBackend) add(name string, e *entry) error {
	if _, dup := b.m[name]; dup {
		return fmt.Errorf("tensor %q appears twice", name)
	}
	b.m[name] = e
	b.order = append(b.order, name)
	return nil
}

func (b *fileBackend) load(name string, shape []int) (*tensor.Dense, error) {
	e := b.m[name]
	n := numElements(shape)
	if e.strides == nil {
		if e.dt == dtF32 && hostLittleEndian && len(e.data) >= 4*n && n > 0 &&
			uintptr(unsafe.Pointer(&e.data[0]))%4 == 0 {
			return newDense(shape, unsafe.Slice((*float32)(unsafe.Pointer(&e.data[0])), n))
		}
		out := make([]float32, n)
		decode(out, e.dt, e.data)
		return newDense(shape, out)
	}
	out := make([]float32, n)
	idx := make([]int, len(shape))
	sz := e.dt.size()
	for i := range out {
		off := 0
		for k, v := range idx {
			off += v * e.strides[k]
		}
		decode(out[i:i+1], e.dt, e.data[off*sz:])
		for k := len(idx) - 1; k >= 0; k-- {
			idx[k]++
			if idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
	}
	return newDense(shape, out)
}

// decode widens len(dst) little-endian elements of type dt from src into dst.
func decode(dst []float32, dt dtype, src []byte) {
	le := binary.LittleEndian
	switch dt {
	case dtF32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
		}
	case dtF16:
		for i := range dst {
			dst[i] = HalfToFloat32(le.Uint16(src[2*i:]))
		}
	case dtBF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(le.Uint16(src[2*i:])) << 16)
		}
	case dtF64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	case dtI64:
		for i := range dst {
			dst[i] = float32(int64(le.Uint64(src[8*i:])))
		}
	case dtI32:
		for i := range dst {
			dst[i] = float32(int32(le.Uint32(src[4*i:])))
		}
	case dtI16:
		for i := range dst {
			dst[i] = float32(int16(le.Uint16(src[2*i:])))
		}
	case dtI8:
		for i := range dst {
			dst[i] = float32(int8(src[i]))
		}
	case dtU8, dtBool:
		for i := range dst {
			dst[i] = float32(src[i])
		}
	}
}

// HalfToFloat32 converts IEEE 754 binary16 bits to float32 exactly.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp == 0:
		if frac == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: value = frac × 2^-24, exact in float32.
		v := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	default:
		return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
	}
}

// Float32ToHalf rounds f to the nearest IEEE 754 binary16 value (ties to even), as
// torch's .half() does; overflow gives ±Inf.
func Float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	frac := b & 0x7fffff
	if exp == 0xff {
		if frac != 0 {
			return sign | 0x7e00 // NaN
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign // underflows to ±0 (even a tie rounds to 0, which is even)
		}
		m := frac | 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := m >> shift
		rem := m & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | frac>>13
	rem := frac & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, up to Inf: still correct
	}
	return sign | uint16(r)
}
