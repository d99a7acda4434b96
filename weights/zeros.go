package weights

import (
	"fmt"
	"sync"

	"gorgonia.org/tensor"
)

// zerosBackend answers every name and shape with zeros from one shared buffer, grown as needed.
type zerosBackend struct {
	mu    sync.Mutex
	zeros []float32
}

func (b *zerosBackend) names() []string                 { return nil }
func (b *zerosBackend) shape(name string) ([]int, bool) { return nil, true }

func (b *zerosBackend) load(name string, shape []int) (*tensor.Dense, error) {
	n := numElements(shape)
	if n <= 0 {
		return nil, fmt.Errorf("shape %s has no elements", formatShape(shape))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > len(b.zeros) {
		b.zeros = make([]float32, n)
	}
	return newDense(shape, b.zeros[:n])
}

// NewZeros returns a Store that answers every tensor name and requested shape with zeros and
// records every request (Requested), so a full-size model can be built in a moment to compare
// the names and shapes it asks for with a manifest (DiffManifest). All tensors share one
// buffer: the model is for inspection, not for running.
func NewZeros() *Store {
	return newStore("zero weights (shape recorder)", &zerosBackend{}, nil)
}
