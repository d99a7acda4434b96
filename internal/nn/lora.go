package nn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/smallsd/smallsd/lora"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LoRA: low-rank updates in the graph. A model that runs with updates (lora.Updates) first adds
// them to its graph with AddLoRAInputs — two graph inputs per patched layer, named after it —
// then builds its forward as usual: each Linear and Conv2d looks for inputs named after its own
// weight and, when it finds them, adds Up·(Down·x) to its output (a Conv2d convolves Down with
// its own stride and padding, then applies Up as a 1×1 convolution). The inputs are bound at
// each Run, so one compiled program serves every set of updates with the same layers and ranks
// (lora.Updates.Key), whatever the adapters and scales; a graph without them is unchanged.

const loraPrefix = "lora:"

// loraName is the name of a layer's update input; part is "down" or "up".
func loraName(part, flat string) string { return loraPrefix + part + ":" + flat }

// AddLoRAInputs adds u's inputs to g and returns them in the order Compile and Run take them
// (after the model's own inputs; LoRAValues gives their values in the same order).
func AddLoRAInputs(g *gorgonia.ExprGraph, u lora.Updates) []*gorgonia.Node {
	var nodes []*gorgonia.Node
	for _, name := range u.Names() {
		for _, p := range []struct {
			part string
			t    *tensor.Dense
		}{{"down", u[name].Down}, {"up", u[name].Up}} {
			s := p.t.Shape()
			nodes = append(nodes, gorgonia.NewTensor(g, tensor.Float32, len(s), gorgonia.WithShape(s...),
				gorgonia.WithName(loraName(p.part, name))))
		}
	}
	return nodes
}

// LoRAValues returns the values of u's inputs, in AddLoRAInputs' order.
func LoRAValues(u lora.Updates) []*tensor.Dense {
	var vals []*tensor.Dense
	for _, name := range u.Names() {
		vals = append(vals, u[name].Down, u[name].Up)
	}
	return vals
}

// LoRARunners are a model's runners for forwards with low-rank updates: one per set of
// patched layers and ranks (lora.Updates.Key), keeping its programs in the model's Cache. The
// updates' values are inputs, so adapters and scales change without recompiling. The zero
// value is ready to use.
type LoRARunners struct {
	mu sync.Mutex
	m  map[string]*Runner
}

// Run runs inputs (the model's, then LoRAValues(u)) on the runner for u's layers, made with
// build(u) on first use. The call goes through base (the model's own Runner), so base's Close
// waits for it and later calls fail with ErrClosed.
func (l *LoRARunners) Run(ctx context.Context, base *Runner, u lora.Updates, build func(lora.Updates) BuildFunc, inputs ...*tensor.Dense) ([]*tensor.Dense, error) {
	var res []*tensor.Dense
	err := base.Call(ctx, func(ctx context.Context) error {
		key := u.Key()
		l.mu.Lock()
		r := l.m[key]
		if r == nil {
			if l.m == nil {
				l.m = map[string]*Runner{}
			}
			r = NewRunner(base.name+" with LoRA", build(u), WithCache(base.Cache()))
			l.m[key] = r
		}
		l.mu.Unlock()
		var err error
		res, err = r.Run(ctx, inputs...)
		return err
	})
	return res, err
}

// Close closes the runners (dropping their programs).
func (l *LoRARunners) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, r := range l.m {
		errs = append(errs, r.Close())
	}
	l.m = nil
	return errors.Join(errs...)
}

// UnusedLoRA returns the layer names of the update inputs among nodes that no layer of g took:
// after the forward is built, updates for layers the model does not have.
func UnusedLoRA(g *gorgonia.ExprGraph, nodes []*gorgonia.Node) []string {
	var out []string
	for _, n := range nodes {
		name := n.Name()
		if !strings.HasPrefix(name, loraPrefix+"down:") {
			continue
		}
		if it := g.To(n.ID()); it == nil || it.Len() == 0 {
			out = append(out, strings.TrimPrefix(name, loraPrefix+"down:"))
		}
	}
	return out
}

// hasLoRA reports whether g has an update for the layer whose weight is weightName.
func hasLoRA(g *gorgonia.ExprGraph, weightName string) bool {
	return len(g.ByName(loraName("down", lora.Flat(strings.TrimSuffix(weightName, ".weight"))))) > 0
}

// addLoRA adds the update of the layer whose weight is weightName to its output y, if g has
// one: y + Up·(Down·x). conv layers give their stride and padding.
func addLoRA(x, y *gorgonia.Node, weightName string, conv bool, stride, pad int) (*gorgonia.Node, error) {
	g := x.Graph()
	if !hasLoRA(g, weightName) {
		return y, nil
	}
	flat := lora.Flat(strings.TrimSuffix(weightName, ".weight"))
	downs := g.ByName(loraName("down", flat))
	ups := g.ByName(loraName("up", flat))
	if len(ups) != 1 {
		return nil, fmt.Errorf("nn: LoRA for %s: no up input", flat)
	}
	down, up := downs[0], ups[0]
	var h *gorgonia.Node
	var err error
	if conv {
		if len(down.Shape()) != 4 || len(up.Shape()) != 4 {
			return nil, fmt.Errorf("nn: LoRA for convolution %s: down %v and up %v, want 4-D", flat, down.Shape(), up.Shape())
		}
		if h, err = Conv(x, down, nil, stride, pad); err == nil {
			h, err = Conv(h, up, nil, 1, 0)
		}
	} else {
		if len(down.Shape()) != 2 || len(up.Shape()) != 2 {
			return nil, fmt.Errorf("nn: LoRA for linear layer %s: down %v and up %v, want 2-D", flat, down.Shape(), up.Shape())
		}
		if h, err = Affine(x, down, nil); err == nil {
			h, err = Affine(h, up, nil)
		}
	}
	if err == nil {
		h, err = Add(y, h)
	}
	if err != nil {
		return nil, fmt.Errorf("nn: LoRA for %s (weight %v): %w", flat, y.Shape(), err)
	}
	return h, nil
}
