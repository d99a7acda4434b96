package weights

import (
	"fmt"
	"math"

	"github.com/nlpodyssey/safetensors"
)

// maxDim bounds a single dimension (and a storage's element count) on every platform; no
// checkpoint tensor comes near it. Products of dimensions are checked by numElements.
const maxDim = math.MaxInt32

var safetensorsDTypes = map[safetensors.DType]dtype{
	safetensors.F32:  dtF32,
	safetensors.F16:  dtF16,
	safetensors.BF16: dtBF16,
	safetensors.F64:  dtF64,
	safetensors.I64:  dtI64,
	safetensors.I32:  dtI32,
	safetensors.I16:  dtI16,
	safetensors.I8:   dtI8,
	safetensors.U8:   dtU8,
	safetensors.BOOL: dtBool,
}

// parseSafetensors indexes a whole safetensors file held in data (not copied: entries alias
// it). The library checks the header length, JSON, dtypes and that the offsets tile the data
// exactly (no gaps, overlaps or out-of-range ends); this adds dtype and shape limits.
func parseSafetensors(data []byte) (be *fileBackend, err error) {
	defer func() {
		if r := recover(); r != nil {
			be, err = nil, fmt.Errorf("malformed safetensors file: %v", r)
		}
	}()
	st, err := safetensors.Deserialize(data)
	if err != nil {
		return nil, fmt.Errorf("bad safetensors file: %w", err)
	}
	be = &fileBackend{m: map[string]*entry{}}
	for _, name := range st.Names() {
		tv, ok := st.Tensor(name)
		if !ok {
			return nil, fmt.Errorf("bad safetensors file: tensor %q listed but not found", name)
		}
		dt, ok := safetensorsDTypes[tv.DType()]
		if !ok {
			return nil, fmt.Errorf("tensor %q has unsupported dtype %v", name, tv.DType())
		}
		shape := make([]int, len(tv.Shape()))
		for i, d := range tv.Shape() {
			if d > maxDim {
				return nil, fmt.Errorf("tensor %q has an implausible dimension %d", name, d)
			}
			shape[i] = int(d)
		}
		n := numElements(shape)
		if n < 0 {
			return nil, fmt.Errorf("tensor %q has an implausibly large shape %s", name, formatShape(shape))
		}
		if len(tv.Data()) != n*dt.size() {
			return nil, fmt.Errorf("tensor %q: %d bytes for shape %s of %v", name, len(tv.Data()), formatShape(shape), dt)
		}
		if err := be.add(name, &entry{dt: dt, shape: shape, data: tv.Data()}); err != nil {
			return nil, err
		}
	}
	return be, nil
}
