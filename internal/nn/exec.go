package nn

import (
	"context"
	"fmt"
	"sync"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Program is a compiled graph: the nodes needed for its outputs in gorgonia's topological
// order, with every intermediate assigned a buffer planned at Compile time. Buffers are taken
// from a pool and returned after their value's last use, so a forward needs only a fraction of
// the memory of all its intermediates; they are allocated on the first Run and reused by every
// later one, which allocates nothing (for graphs made of this package's ops).
//
// Run never writes into its inputs or into values bound to graph nodes (weights, constants).
// The tensors Run returns share the Program's buffers: they are valid until the next Run.
// Runs are serialised by a mutex; a Program is not meant for concurrent use.
type Program struct {
	mu sync.Mutex

	vals   []value
	steps  []step
	inputs []int // value index of each program input, in Compile order
	outs   []int // value index of each output, in Compile order

	arenaLen int         // planned length of the buffer all intermediates live in, in float32s
	buf      []float32   // allocated on the first Run
	data     [][]float32 // per value: its data during a Run
	outT     []*tensor.Dense
	outPtr   []*float32  // backing of each outT, to notice when it must be rebuilt
	args     [][]float32 // scratch for a step's input data

	peak, arena int64
	peakLive    []int // the computed values alive at the peak (PeakValues)
}

type valueKind int

const (
	kindInput    valueKind = iota // program input, bound at Run
	kindFixed                     // node with a bound value: weights, constants
	kindComputed                  // result of an op, in a buffer slot
	kindView                      // alias of another value's data
)

type value struct {
	node  *gorgonia.Node
	kind  valueKind
	shape tensor.Shape
	size  int
	fixed gorgonia.Value // kindFixed
	slot  int            // kindComputed: offset of its data in the arena, in float32s
	base  int            // kindView: the value aliased
}

type step struct {
	val     int         // value computed
	k       kernel      // this package's op, nil for a foreign op
	foreign gorgonia.Op // a gorgonia op not from this package
	args    []int       // input values, in order
	fargs   []gorgonia.Value
}

// Compile plans the execution of outputs (results and taps: any node of g) given the graph
// inputs, which are bound by position at each Run. Every other leaf the outputs depend on must
// have a bound value (a weight or constant). Nodes of g the outputs do not need are not run.
func Compile(g *gorgonia.ExprGraph, inputs, outputs []*gorgonia.Node) (*Program, error) {
	if g == nil {
		return nil, fmt.Errorf("nn: Compile: nil graph")
	}
	if len(outputs) == 0 {
		return nil, fmt.Errorf("nn: Compile: no outputs")
	}
	sorted, err := gorgonia.Sort(g)
	if err != nil {
		return nil, fmt.Errorf("nn: Compile: %w", err)
	}
	// gorgonia sorts roots first; execution goes leaves first.
	order := make([]*gorgonia.Node, len(sorted))
	for i, n := range sorted {
		order[len(sorted)-1-i] = n
	}

	// Keep only what the outputs need.
	needed := map[*gorgonia.Node]bool{}
	var mark func(n *gorgonia.Node)
	mark = func(n *gorgonia.Node) {
		if needed[n] {
			return
		}
		needed[n] = true
		for _, c := range children(g, n) {
			mark(c)
		}
	}
	for i, o := range outputs {
		if o == nil || o.Graph() != g {
			return nil, fmt.Errorf("nn: Compile: output %d is nil or not in the graph", i)
		}
		mark(o)
	}
	inputIdx := map[*gorgonia.Node]int{}
	for _, in := range inputs {
		needed[in] = true // an input no output needs is still bound (and checked) at Run
	}
	for i, in := range inputs {
		if in == nil || in.Graph() != g {
			return nil, fmt.Errorf("nn: Compile: input %d is nil or not in the graph", i)
		}
		if in.Op() != nil {
			return nil, fmt.Errorf("nn: Compile: input %d (%s) is computed by %v, not a graph input", i, in.Name(), in.Op())
		}
		if _, dup := inputIdx[in]; dup {
			return nil, fmt.Errorf("nn: Compile: input %d (%s) given twice", i, in.Name())
		}
		inputIdx[in] = i
	}

	p := &Program{inputs: make([]int, len(inputs))}
	for i := range p.inputs {
		p.inputs[i] = -1
	}
	index := map[*gorgonia.Node]int{}
	for _, n := range order {
		if !needed[n] {
			continue
		}
		if n.Dtype() != tensor.Float32 {
			return nil, fmt.Errorf("nn: Compile: node %s is %v; only float32 graphs run", n.Name(), n.Dtype())
		}
		v := value{node: n, shape: n.Shape(), size: shapeSize(n.Shape())}
		if v.size < 0 {
			return nil, fmt.Errorf("nn: Compile: node %s of shape %v is too large", n.Name(), n.Shape())
		}
		vi := len(p.vals)
		switch i, isInput := inputIdx[n]; {
		case isInput:
			v.kind = kindInput
			p.inputs[i] = vi
		case n.Op() == nil || n.Value() != nil && len(children(g, n)) == 0:
			if n.Value() == nil {
				return nil, fmt.Errorf("nn: Compile: leaf %s has no value and is not among the inputs", n.Name())
			}
			v.kind, v.fixed = kindFixed, n.Value()
		default:
			st := step{val: vi}
			for _, c := range children(g, n) {
				st.args = append(st.args, index[c])
			}
			if o, ok := n.Op().(*Op); ok {
				st.k = o.k
				if _, isView := o.k.(viewKernel); isView {
					v.kind, v.base = kindView, st.args[0]
				} else {
					v.kind = kindComputed
				}
			} else {
				st.foreign = n.Op()
				st.fargs = make([]gorgonia.Value, len(st.args))
				v.kind = kindComputed
			}
			if len(st.args) > len(p.args) {
				p.args = make([][]float32, len(st.args))
			}
			p.steps = append(p.steps, st)
		}
		index[n] = vi
		p.vals = append(p.vals, v)
	}
	for _, o := range outputs {
		p.outs = append(p.outs, index[o])
	}
	// Several placements, keeping the smallest arena (planning is cheap next to compiling): a
	// result computed in place takes the first input that allows it, or the one lowest in the
	// arena (which keeps a chain of residual adds low, leaving room above it); a value placed
	// after all others goes right after them, or at the next multiple of half its size (which
	// leaves room below a large value for the next one: the 512×512 VAE decoder's upsampled
	// tensor and its resnet's shortcut, so its arena is 384 MiB rather than 496).
	best, bestArena := planOptions{}, -1
	for _, o := range []planOptions{{}, {lowest: true}, {align: true}, {lowest: true, align: true}} {
		if p.plan(o); bestArena < 0 || p.arenaLen < bestArena {
			best, bestArena = o, p.arenaLen
		}
	}
	p.plan(best)
	p.data = make([][]float32, len(p.vals))
	p.outT = make([]*tensor.Dense, len(p.outs))
	p.outPtr = make([]*float32, len(p.outs))
	return p, nil
}

// children returns n's inputs in order.
func children(g *gorgonia.ExprGraph, n *gorgonia.Node) []*gorgonia.Node {
	it := g.From(n.ID())
	if it == nil {
		return nil
	}
	var cs []*gorgonia.Node
	for it.Next() {
		cs = append(cs, it.Node().(*gorgonia.Node))
	}
	return cs
}

// root follows views to the value that owns the data.
func (p *Program) root(v int) int {
	for p.vals[v].kind == kindView {
		v = p.vals[v].base
	}
	return v
}

// planOptions chooses among the placements plan can make.
type planOptions struct {
	lowest bool // compute in place over the input placed lowest, not the first allowed
	align  bool // place a value that fits no gap at a multiple of half its size
}

// arenaAlign keeps every value's data at a 64-byte boundary of the arena.
const arenaAlign = 16

// plan places each computed value in one arena: in the data of an input read for the last time
// when the op may work in place (element-wise ops, norms) and the input is large enough (the
// first such input, or with opt.lowest the one placed lowest), else
// in the smallest gap between the values alive at that step that holds it, else after the
// last of them (with opt.align, at the next multiple of half its size). A value's place is free again after the last step that reads it or a view of
// it; outputs are never freed. Placing by offset (rather than reusing and growing whole
// buffers) keeps the arena close to the peak of live values.
func (p *Program) plan(opt planOptions) {
	p.arenaLen, p.peakLive = 0, nil
	const pinned = int(^uint(0) >> 1)
	last := make([]int, len(p.vals))
	for si, st := range p.steps {
		last[p.root(st.val)] = max(last[p.root(st.val)], si) // unused results die at once
		for _, a := range st.args {
			r := p.root(a)
			last[r] = max(last[r], si)
		}
	}
	for _, o := range p.outs {
		last[p.root(o)] = pinned
	}
	type span struct{ off, end, val int } // [off, end) in floats
	var spans []span                      // the live values' places, sorted by offset
	extent := func(v *value) int { return (v.size + arenaAlign - 1) &^ (arenaAlign - 1) }
	var live, peak int64
	for si := range p.steps {
		st := &p.steps[si]
		v := &p.vals[st.val]
		taken := -1 // the input whose place the result overwrites
		if v.kind == kindComputed {
			if ip, ok := st.k.(inPlacer); ok {
				for _, i := range ip.inPlaceArgs() {
					a := st.args[i]
					if p.vals[a].kind == kindComputed && last[a] == si && p.vals[a].size >= v.size &&
						(taken < 0 || p.vals[a].slot < p.vals[taken].slot) {
						taken = a
						if !opt.lowest {
							break
						}
					}
				}
			}
			if taken >= 0 {
				v.slot = p.vals[taken].slot
				live -= int64(p.vals[taken].size) * 4
				for k := range spans {
					if spans[k].val == taken {
						// A smaller result (a banded convolution to fewer channels) frees the
						// rest of the place for later values.
						spans[k].val, spans[k].end = st.val, spans[k].off+extent(v)
					}
				}
			} else {
				n, off, gap, prev := extent(v), -1, pinned, 0
				for _, sp := range spans {
					if g := sp.off - prev; g >= n && g < gap {
						off, gap = prev, g
					}
					prev = max(prev, sp.end)
				}
				if off < 0 {
					off = prev
					if a := (n/2 + arenaAlign - 1) &^ (arenaAlign - 1); opt.align && a > 0 {
						off = (prev + a - 1) / a * a
					}
				}
				v.slot = off
				k := 0
				for k < len(spans) && spans[k].off < off {
					k++
				}
				spans = append(spans[:k], append([]span{{off, off + n, st.val}}, spans[k:]...)...)
				p.arenaLen = max(p.arenaLen, off+n)
			}
			live += int64(v.size) * 4
			if live > peak {
				peak = live
				p.peakLive = p.peakLive[:0]
				for _, sp := range spans {
					p.peakLive = append(p.peakLive, sp.val)
				}
			}
		}
		seen := map[int]bool{taken: true}
		for _, a := range append([]int{st.val}, st.args...) {
			r := p.root(a)
			if seen[r] || last[r] != si || p.vals[r].kind != kindComputed {
				continue
			}
			seen[r] = true
			for k := range spans {
				if spans[k].val == r {
					spans = append(spans[:k], spans[k+1:]...)
					break
				}
			}
			live -= int64(p.vals[r].size) * 4
		}
	}
	p.peak = peak
	p.arena = int64(p.arenaLen) * 4
}

// PeakBytes is the largest number of bytes of intermediate values alive at once during a Run
// (inputs, weights and kernel workspaces not counted).
func (p *Program) PeakBytes() int64 { return p.peak }

// PeakValues describes the intermediate values alive at the PeakBytes peak, one line each
// (the op computing it, its shape and its MiB), in arena order: it says which layer sets a
// program's peak, for tuning the memory of a model's forward.
func (p *Program) PeakValues() []string {
	out := make([]string, 0, len(p.peakLive))
	for _, vi := range p.peakLive {
		v := &p.vals[vi]
		op := "?"
		if v.node.Op() != nil {
			op = v.node.Op().String()
			if len(op) > 60 {
				op = op[:60] + "…"
			}
		}
		out = append(out, fmt.Sprintf("%8.1f MiB %v %s", float64(v.size)*4/(1<<20), v.shape, op))
	}
	return out
}

// BufferBytes is the size of the buffers the Program allocates for intermediates, at least
// PeakBytes (a buffer is reused for values of different sizes).
func (p *Program) BufferBytes() int64 { return p.arena }

// NumInputs is the number of inputs Run expects.
func (p *Program) NumInputs() int { return len(p.inputs) }

// InputShape returns the shape Run expects for input i.
func (p *Program) InputShape(i int) tensor.Shape { return p.vals[p.inputs[i]].shape.Clone() }

// Run executes the program on inputs (float32, in Compile order, with the shapes of their
// nodes) and returns the outputs in Compile order. The returned tensors share the Program's
// buffers and are valid until the next Run; clone them to keep them. The context is checked
// between ops.
func (p *Program) Run(ctx context.Context, inputs ...*tensor.Dense) ([]*tensor.Dense, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(inputs) != len(p.inputs) {
		return nil, fmt.Errorf("nn: Run: %d inputs, want %d", len(inputs), len(p.inputs))
	}
	for i, t := range inputs {
		v := &p.vals[p.inputs[i]]
		if t == nil {
			return nil, fmt.Errorf("nn: Run: input %d (%s) is nil", i, v.node.Name())
		}
		if !t.Shape().Eq(v.shape) {
			return nil, fmt.Errorf("nn: Run: input %d (%s) has shape %v, want %v", i, v.node.Name(), t.Shape(), v.shape)
		}
		d, err := f32Data(t)
		if err != nil {
			return nil, fmt.Errorf("nn: Run: input %d (%s): %w", i, v.node.Name(), err)
		}
		p.data[p.inputs[i]] = d
	}
	if p.buf == nil {
		p.buf = make([]float32, p.arenaLen)
		for i := range p.vals {
			v := &p.vals[i]
			switch v.kind {
			case kindComputed:
				p.data[i] = p.buf[v.slot : v.slot+v.size : v.slot+v.size]
			case kindFixed:
				d, err := fixedData(v.fixed, v.size)
				if err != nil {
					p.buf = nil
					return nil, fmt.Errorf("nn: Run: value of %s: %w", v.node.Name(), err)
				}
				p.data[i] = d
			}
		}
	}
	for si := range p.steps {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("nn: Run stopped before op %d of %d: %w", si+1, len(p.steps), err)
		}
		st := &p.steps[si]
		v := &p.vals[st.val]
		if v.kind == kindView {
			off := st.k.(viewKernel).offset()
			p.data[st.val] = p.data[v.base][off : off+v.size]
			continue
		}
		if st.foreign != nil {
			if err := p.runForeign(st); err != nil {
				return nil, err
			}
			continue
		}
		args := p.args[:len(st.args)]
		for i, a := range st.args {
			args[i] = p.data[a]
		}
		err := st.k.run(p.data[st.val], args)
		clear(args)
		if err != nil {
			return nil, fmt.Errorf("nn: Run: %s: %w", v.node.Name(), err)
		}
	}
	for i, o := range p.outs {
		d := p.data[o]
		if p.outT[i] == nil || len(d) == 0 || p.outPtr[i] != &d[0] {
			p.outT[i] = tensor.New(tensor.WithShape(p.vals[o].shape...), tensor.WithBacking(d))
			if len(d) > 0 {
				p.outPtr[i] = &d[0]
			}
		}
	}
	return p.outT, nil
}

// runForeign runs a gorgonia op that is not ours through its Do on fresh headers over the
// input data (so it cannot reshape our values), then copies its result into the value's buffer.
func (p *Program) runForeign(st *step) error {
	for i, a := range st.args {
		v := &p.vals[a]
		if v.kind == kindFixed {
			st.fargs[i] = v.fixed
			continue
		}
		st.fargs[i] = tensor.New(tensor.WithShape(v.shape...), tensor.WithBacking(p.data[a]))
	}
	v := &p.vals[st.val]
	res, err := st.foreign.Do(st.fargs...)
	clear(st.fargs)
	if err != nil {
		return fmt.Errorf("nn: Run: %v (%s): %w", st.foreign, v.node.Name(), err)
	}
	d, err := fixedData(res, v.size)
	if err != nil {
		return fmt.Errorf("nn: Run: result of %v (%s): %w", st.foreign, v.node.Name(), err)
	}
	copy(p.data[st.val], d)
	return nil
}

// fixedData returns the float32 elements of a bound value: a dense tensor (materialised if it
// is a strided view) or a float32 scalar.
func fixedData(v gorgonia.Value, size int) ([]float32, error) {
	switch t := v.(type) {
	case *tensor.Dense:
		if t.IsView() {
			t = t.Materialize().(*tensor.Dense)
		}
		d, err := f32Data(t)
		if err != nil {
			return nil, err
		}
		if len(d) != size {
			return nil, fmt.Errorf("holds %d values, want %d", len(d), size)
		}
		return d, nil
	case *gorgonia.F32:
		return []float32{float32(*t)}, nil
	}
	return nil, fmt.Errorf("value is %T, want a float32 *tensor.Dense", v)
}
