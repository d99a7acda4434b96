package lora

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gorgonia.org/tensor"
)

// Update is one layer's low-rank update for one forward: the layer's output gains Up·(Down·x)
// (for a convolution: Down convolved like the layer, then Up as a 1×1 convolution). Scales and
// alpha/rank are already multiplied into Up.
type Update struct {
	Down, Up *tensor.Dense
}

// Updates maps the flat names (Flat) of one model's layers to their updates; nil or empty
// means none. The models take them per call: the graph computes W·x + b + Up·(Down·x) for the
// layers named and nothing more for the others.
type Updates map[string]Update

// Scaled is an adapter applied at a scale.
type Scaled struct {
	Adapter *Adapter
	Scale   float64
}

// Combine returns the updates of component (UNet or TextEncoder) for adapters applied
// together: for each layer, the adapters' Downs stacked and their Ups side by side, each Up
// multiplied by scale·alpha/rank, so that one rank-Σr update computes the sum of the adapters'
// (y = W·x + b + Σ scaleᵢ·(alphaᵢ/rᵢ)·Upᵢ·(Downᵢ·x)). Adapters at scale 0 are left out. Layers
// patched by several adapters must agree on their shapes.
func Combine(component string, adapters ...Scaled) (Updates, error) {
	type piece struct {
		l *Layer
		f float32
	}
	by := map[string][]piece{}
	for _, s := range adapters {
		if s.Adapter == nil {
			return nil, fmt.Errorf("lora: nil adapter")
		}
		if s.Scale == 0 {
			continue
		}
		for name, l := range s.Adapter.Layers(component) {
			by[name] = append(by[name], piece{l, float32(s.Scale) * l.Factor()})
		}
	}
	if len(by) == 0 {
		return nil, nil
	}
	u := Updates{}
	for name, ps := range by {
		d0, u0 := ps[0].l.Down.Shape(), ps[0].l.Up.Shape()
		rank := 0
		for _, p := range ps {
			ds, us := p.l.Down.Shape(), p.l.Up.Shape()
			if len(ds) != len(d0) || !ds[1:].Eq(d0[1:]) || us[0] != u0[0] || len(us) != len(u0) {
				return nil, fmt.Errorf("lora: layer %s: %s has down %v, up %v but %s down %v, up %v",
					name, p.l.Key, ds, us, ps[0].l.Key, d0, u0)
			}
			rank += ds[0]
		}
		out := u0[0]
		per := d0.TotalSize() / d0[0] // values per row of Down
		dd := make([]float32, 0, rank*per)
		ud := make([]float32, out*rank)
		col := 0
		for _, p := range ps {
			r := p.l.Rank()
			dd = append(dd, p.l.Down.Float32s()[:r*per]...)
			src := p.l.Up.Float32s()
			for o := 0; o < out; o++ {
				for j := 0; j < r; j++ {
					ud[o*rank+col+j] = p.f * src[o*r+j]
				}
			}
			col += r
		}
		dshape := append(tensor.Shape{rank}, d0[1:]...)
		ushape := append(tensor.Shape{out, rank}, u0[2:]...)
		u[name] = Update{
			Down: tensor.New(tensor.WithShape(dshape...), tensor.WithBacking(dd)),
			Up:   tensor.New(tensor.WithShape(ushape...), tensor.WithBacking(ud)),
		}
	}
	return u, nil
}

// Names returns the layer names, sorted.
func (u Updates) Names() []string {
	names := make([]string, 0, len(u))
	for n := range u {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Key identifies what a graph computing u looks like: the layers and their update shapes.
// Updates with the same Key run on the same compiled program with different values.
func (u Updates) Key() string {
	if len(u) == 0 {
		return ""
	}
	var b strings.Builder
	for _, n := range u.Names() {
		b.WriteString(n)
		for _, t := range []*tensor.Dense{u[n].Down, u[n].Up} {
			for _, d := range t.Shape() {
				b.WriteByte(',')
				b.WriteString(strconv.Itoa(d))
			}
		}
		b.WriteByte(';')
	}
	return b.String()
}

// Fuse returns w + scale·(alpha/rank)·Up·Down for one layer, in float32 (convolutions: Up and
// Down flattened to matrices), as diffusers' fuse_lora computes it. w is not modified. The
// pipeline does not fuse (it runs the low-rank path in the graph); Fuse is for comparison and
// for callers who want merged weights.
func Fuse(w *tensor.Dense, l *Layer, scale float64) (*tensor.Dense, error) {
	ws, ds, us := w.Shape(), l.Down.Shape(), l.Up.Shape()
	r := ds[0]
	in := ds.TotalSize() / r
	out := us[0]
	if ws.TotalSize() != out*in || ws[0] != out {
		return nil, fmt.Errorf("lora: Fuse %s: weight %v does not match down %v, up %v", l.Key, ws, ds, us)
	}
	f := float32(scale) * l.Factor()
	src, dd, ud := w.Float32s(), l.Down.Float32s(), l.Up.Float32s()
	res := make([]float32, out*in)
	for o := 0; o < out; o++ {
		row := res[o*in : (o+1)*in]
		copy(row, src[o*in:(o+1)*in])
		for j := 0; j < r; j++ {
			c := f * ud[o*r+j]
			for i, d := range dd[j*in : (j+1)*in] {
				row[i] += c * d
			}
		}
	}
	return tensor.New(tensor.WithShape(ws.Clone()...), tensor.WithBacking(res)), nil
}
