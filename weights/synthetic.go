package weights

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"

	"gorgonia.org/tensor"
)

// syntheticBackend answers names by the rule of testdata/SYNTHETIC.md. With allowed nil it
// answers every name and shape; otherwise only the listed names, with their shapes.
type syntheticBackend struct {
	allowed map[string][]int
	order   []string
}

func (b *syntheticBackend) names() []string {
	if b.allowed == nil {
		return nil
	}
	return append([]string(nil), b.order...)
}

func (b *syntheticBackend) shape(name string) ([]int, bool) {
	if b.allowed == nil {
		return nil, true
	}
	s, ok := b.allowed[name]
	return s, ok
}

func (b *syntheticBackend) loadHalf(name string, shape []int, f halfFormat) ([]uint16, error) {
	n := numElements(shape)
	if n <= 0 {
		return nil, fmt.Errorf("shape %s has no elements", formatShape(shape))
	}
	out := make([]uint16, n)
	fillSyntheticHalf(out, name, shape, f)
	return out, nil
}

func (b *syntheticBackend) load(name string, shape []int) (*tensor.Dense, error) {
	n := numElements(shape)
	if n <= 0 {
		return nil, fmt.Errorf("shape %s has no elements", formatShape(shape))
	}
	out := make([]float32, n)
	FillSynthetic(out, name, shape)
	return newDense(shape, out)
}

// NewSynthetic returns a Store that answers every tensor name and requested shape with the
// deterministic synthetic weights of testdata/SYNTHETIC.md (the weights behind
// testdata/fullsize-golden.safetensors). Tensor requires a shape. Has reports true for every
// name, Names lists the names requested so far, and Requested records every request, in
// order, for comparison with a manifest (DiffManifest).
func NewSynthetic() *Store {
	return newStore("synthetic weights", &syntheticBackend{}, nil)
}

// NewSyntheticFromManifest is NewSynthetic restricted to the tensors of a manifest: only
// listed names are present, with exactly the listed shapes, so a model built from it gets the
// same strict checks (and Unused report) as from the real checkpoint.
func NewSyntheticFromManifest(manifest []Request) (*Store, error) {
	b := &syntheticBackend{allowed: map[string][]int{}}
	for _, r := range manifest {
		if _, dup := b.allowed[r.Name]; dup {
			return nil, fmt.Errorf("weights: manifest lists %q twice", r.Name)
		}
		if r.Shape == nil {
			return nil, fmt.Errorf("weights: manifest entry %q has no shape", r.Name)
		}
		b.allowed[r.Name] = append([]int{}, r.Shape...)
		b.order = append(b.order, r.Name)
	}
	return newStore("synthetic weights (manifest)", b, nil), nil
}

// FillSynthetic writes the synthetic weights of the tensor name with the given shape into dst
// (len(dst) = product of shape), bit-exactly as testdata/SYNTHETIC.md specifies. Large tensors
// are generated on all cores.
func FillSynthetic(dst []float32, name string, shape []int) {
	fill := syntheticRule(name, shape)
	parallelRange(len(dst), func(lo, hi int) { fill(dst[lo:hi], lo) })
}

// fillSyntheticHalf is FillSynthetic rounded to 16-bit floats of format f, generated in small
// chunks so that no float32 copy of the tensor is ever held.
func fillSyntheticHalf(dst []uint16, name string, shape []int, f halfFormat) {
	fill := syntheticRule(name, shape)
	parallelRange(len(dst), func(lo, hi int) {
		var buf [4096]float32
		for a := lo; a < hi; a += len(buf) {
			c := buf[:min(len(buf), hi-a)]
			fill(c, a)
			for j, v := range c {
				dst[a+j] = f.round(v)
			}
		}
	})
}

// syntheticRule returns the generator of the tensor name with the given shape: fill(d, first)
// writes elements first, first+1, … of it into d.
func syntheticRule(name string, shape []int) (fill func(d []float32, first int)) {
	h := uint32(2166136261) // FNV-1a 32
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	var kind int // 0 bias, 1 norm weight, 2 embedding, 3 fan-in scaled
	scale := 0.0
	switch {
	case len(shape) >= 2 && strings.Contains(name, "embedding"):
		kind = 2
	case len(shape) >= 2:
		kind = 3
		fanIn := 1
		for _, d := range shape[1:] {
			fanIn *= d
		}
		scale = math.Sqrt(3 / float64(fanIn))
	case strings.Contains(name, "norm") && strings.HasSuffix(name, ".weight"):
		kind = 1
	}
	// One loop per rule keeps the per-element work to the hash, a multiply and a rounding.
	var mul, add float64
	switch kind {
	case 0:
		mul = 0.1
	case 1:
		mul, add = 0.2, 1
	case 2:
		mul = 0.05
	default:
		mul = scale
	}
	return func(d []float32, lo int) {
		for j := range d {
			x := uint32(lo+j)*2654435761 + h
			x ^= x >> 16
			x *= 0x85EBCA6B
			x ^= x >> 13
			x *= 0xC2B2AE35
			x ^= x >> 16
			u := float64(x>>8)/(1<<24)*2 - 1
			if kind == 1 {
				d[j] = float32(add + mul*u)
			} else {
				d[j] = float32(u * mul)
			}
		}
	}
}

// parallelRange splits [0, n) over all cores (small ranges run on the caller's goroutine).
func parallelRange(n int, f func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	const minChunk = 1 << 16
	if workers < 2 || n < 2*minChunk {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}
