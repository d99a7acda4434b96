package safety

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/smallsd/smallsd/internal/nn"
	"gorgonia.org/tensor"
)

// errClosed is returned after Close. TEMPORARY until internal/nn's Runner lands.
var errClosed = errors.New("safety: checker closed")

// runner keeps one compiled program per input shape. TEMPORARY until internal/nn's Runner lands.
type runner struct {
	name  string
	build func(shapes ...tensor.Shape) (*nn.Program, error)

	mu     sync.Mutex
	progs  map[string]*nn.Program
	closed bool
}

func newRunner(name string, build func(shapes ...tensor.Shape) (*nn.Program, error)) *runner {
	return &runner{name: name, build: build, progs: map[string]*nn.Program{}}
}

func (r *runner) Run(ctx context.Context, inputs ...*tensor.Dense) ([]*tensor.Dense, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed
	}
	shapes := make([]tensor.Shape, len(inputs))
	for i, in := range inputs {
		shapes[i] = in.Shape()
	}
	key := fmt.Sprint(shapes)
	p := r.progs[key]
	if p == nil {
		var err error
		if p, err = r.build(shapes...); err != nil {
			return nil, err
		}
		r.progs[key] = p
	}
	outs, err := p.Run(ctx, inputs...)
	if err != nil {
		return nil, err
	}
	res := make([]*tensor.Dense, len(outs))
	for i, o := range outs {
		d := make([]float32, o.Size())
		copy(d, o.Float32s())
		res[i] = tensor.New(tensor.WithShape(o.Shape().Clone()...), tensor.WithBacking(d))
	}
	return res, nil
}

func (r *runner) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.progs = nil
	return nil
}
