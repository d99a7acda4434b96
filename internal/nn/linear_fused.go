package nn

import (
	"fmt"
	"strings"

	"github.com/smallsd/smallsd/internal/kernels"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Fused projections: layers of equal width that read the same input (an attention's to_q, to_k
// and to_v; a cross-attention's to_k and to_v) are one Linear whose weight stacks theirs along
// out, packed once at load like any other (the stacked matrix replaces the layers' own, so the
// weights take no more memory). One matrix product then computes all of them, reading the input
// once, and writes each layer's output as an array of its own (kernels.LinearPackedParts), which
// ForwardParts hands out as views, each with its layer's LoRA update added by name.

// NewFusedLinear reads "weight" (out×in) and, when bias is set, "bias" (out) under each of ws
// and stacks them into one Linear of len(ws)·out outputs with Parts naming the layers. out must
// be a multiple of kernels.LinearPartAlign.
func NewFusedLinear(ws []weights.View, in, out int, bias bool) (*Linear, error) {
	if len(ws) == 0 || out <= 0 || out%kernels.LinearPartAlign != 0 {
		return nil, fmt.Errorf("nn: fused linear of %d layers of width %d (want a multiple of %d)", len(ws), out, kernels.LinearPartAlign)
	}
	l := &Linear{In: in, Out: len(ws) * out, srcs: ws}
	var err error
	if l.Weight, err = loadLinearWeight(ws, out, in); err != nil {
		return nil, err
	}
	l.Weight = packBF16(l.Weight)
	for _, w := range ws {
		l.Parts = append(l.Parts, fullName(w, "weight"))
	}
	if bias {
		b := make([]float32, 0, l.Out)
		var names []string
		for _, w := range ws {
			p, err := loadParam(w, "bias", out)
			if err != nil {
				return nil, err
			}
			b = append(b, p.T.Float32s()[:out]...)
			names = append(names, p.Name)
		}
		l.Bias = Param{Name: strings.Join(names, "+"), T: tensor.New(tensor.WithShape(l.Out), tensor.WithBacking(b))}
	}
	return l, nil
}

// loadLinearWeight reads the weight of a Linear as NewLinear (one view) or NewFusedLinear (the
// layers' weights, out×in each, stacked along out) keep it: packed (float32 and IEEE half) or as
// bf16 bits. A stack is named after its layers' weights, joined by "+".
func loadLinearWeight(ws []weights.View, out, in int) (Param, error) {
	if len(ws) == 1 {
		p, err := loadWeight(ws[0], "weight", out, in)
		return packLinear(p, out, in), err
	}
	var f32 [][]float32 // float32 parts, packed without being stacked
	var bits []uint16   // or the half bits, stacked
	var names []string
	n := out * in
	for i, w := range ws {
		p, err := loadWeight(w, "weight", out, in)
		if err != nil {
			return Param{}, err
		}
		names = append(names, p.Name)
		switch {
		case p.T != nil && len(bits) == 0:
			f32 = append(f32, p.T.Float32s()[:n])
		case p.Half != nil && len(f32) == 0 && p.Half.BF16 == w.PreferBF16():
			if bits == nil {
				bits = make([]uint16, len(ws)*n)
			}
			copy(bits[i*n:(i+1)*n], p.Half.Bits)
			dropped(p.Bytes()) // garbage once copied
		default:
			return Param{}, fmt.Errorf("nn: %s is not held as %s is", p.Name, names[0])
		}
	}
	stack := Param{Name: strings.Join(names, "+")}
	switch {
	case f32 != nil:
		stack.Packed = kernels.PackWeightParts(f32, out, in)
		dropped(stack.Packed.Bytes())
		return stack, nil
	case ws[0].PreferBF16():
		stack.Half = &HalfWeight{Name: stack.Name, Bits: bits, Shape: tensor.Shape{len(ws) * out, in}, BF16: true}
		return stack, nil
	}
	stack.Half = &HalfWeight{Name: stack.Name, Bits: bits, Shape: tensor.Shape{len(ws) * out, in}}
	return packLinear(stack, len(ws)*out, in), nil
}

// ForwardParts returns x·weightᵀ + bias for x of shape …×in, one node per part (…×Out/len(Parts)
// each, in Parts' order), each plus its layer's low-rank update when the graph has one (see
// AddLoRAInputs). A Linear of one layer returns Forward's result.
func (l *Linear) ForwardParts(x *gorgonia.Node) ([]*gorgonia.Node, error) {
	if l.Parts == nil {
		y, err := l.Forward(x)
		if err != nil {
			return nil, err
		}
		return []*gorgonia.Node{y}, nil
	}
	xs := x.Shape()
	if len(xs) < 1 || xs[len(xs)-1] != l.In {
		return nil, fmt.Errorf("nn: linear %s: input %v, want …×%d", l.Weight.Name, xs, l.In)
	}
	part := l.Out / len(l.Parts)
	k := linearPartsK{Rows: shapeSize(xs[:len(xs)-1]), Part: part}
	var err error
	if k.W, err = l.packed(); err != nil {
		return nil, err
	}
	if k.W == nil {
		if k.H = l.Weight.Half; k.H == nil || !k.H.BF16 {
			return nil, fmt.Errorf("nn: linear %s: weight neither packed nor bf16", l.Weight.Name)
		}
	}
	partShape := append(tensor.Shape{}, xs...)
	partShape[len(partShape)-1] = part
	in := []*gorgonia.Node{x}
	if b := l.Bias.Node(x.Graph()); b != nil {
		k.Bias = true
		in = append(in, b)
	}
	y, err := apply("linear_parts", k, append(tensor.Shape{len(l.Parts)}, partShape...), in...)
	if err != nil {
		return nil, err
	}
	size := shapeSize(partShape)
	ps := make([]*gorgonia.Node, len(l.Parts))
	for i, name := range l.Parts {
		if ps[i], err = apply("linear_part", viewK{Off: i * size}, partShape, y); err == nil {
			ps[i], err = addLoRA(x, ps[i], name, false, 0, 0)
		}
		if err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// linearPartsK is a fused Linear's product: the parts, each Rows×Part, one after another.
type linearPartsK struct {
	Rows, Part int
	Bias       bool
	W          *kernels.PackedWeight // packed float32 or half weight, or
	H          *HalfWeight           // bf16 weight
}

func (k linearPartsK) run(dst []float32, src [][]float32) error {
	var b []float32
	if k.Bias {
		b = src[1]
	}
	if k.W != nil {
		kernels.LinearPackedParts(src[0], k.Rows, k.W, b, k.Part, dst)
		return nil
	}
	if k.H.Pairs != nil {
		kernels.LinearBF16PackedParts(src[0], k.Rows, k.H.Pairs, b, k.Part, dst)
		return nil
	}
	kernels.LinearBF16Parts(src[0], k.Rows, k.H.Shape[1], k.H.Bits, k.H.Shape[0], b, k.Part, dst)
	return nil
}

// Feed-forward GEGLU: the first layer of diffusers' FeedForward widens the tokens 8× (rows×2C,
// 84 MB at 64×64 latents in small-sd) only for GEGLU to halve them again. LinearGEGLU computes
// the product a block of rows at a time into a scratch block that stays in cache and writes only
// GEGLU's result; the scratch lives after the result in the op's output, so the Program plans it
// like any buffer (and Run still allocates nothing). With a small weight (float32 or half)
// (kernels.LinearPackedGEGLU) the same scratch holds a row tile per worker instead, each worker
// gating its own tiles as it makes them, with no barrier between the two steps.

// gegluScratch is the scratch block's size in floats (8 MiB): blocks of a few hundred rows at
// the UNet's widths, enough for the GEMM to split rows among workers and reuse each packed
// weight block. Weights whose GEMM prepares the whole matrix on every call, once per block here
// (fp16 panels and bf16 ones off the pair path widened, bf16 bits not packed at load), get 4×
// as much. On the Zen 5 machine
// (BenchmarkTransformer2DModel 64×64, load 2) fp16 took 242 ms with 32 MiB blocks, 251 ms with
// 8 MiB and 260 ms unfused; bf16 (then packed per call) 144, 144 and 156 ms; 2×640×32×32 in fp16
// 128, 130 and 134 ms.
const gegluScratch = 1 << 21

// gegluMinRows is the fewest rows of a block: at least 64 units of the GEMM's 6-row panels, so
// that it splits rows rather than columns.
const gegluMinRows = 384

type linearGEGLUK struct {
	Rows, Block, In, Out int // Out = 2·C
	Bias                 bool
	W                    *kernels.PackedWeight // packed float32 or half weight, or
	H                    *HalfWeight           // bf16 weight
}

func (k linearGEGLUK) run(dst []float32, src [][]float32) error {
	var b []float32
	if k.Bias {
		b = src[1]
	}
	c := k.Out / 2
	y, scratch := dst[:k.Rows*c], dst[k.Rows*c:]
	if k.W != nil && kernels.LinearPackedGEGLU(src[0], k.Rows, k.W, b, y, scratch) {
		return nil // a small weight: row tiles gated as they are made
	}
	if k.H != nil && k.H.Pairs != nil && kernels.LinearBF16PackedGEGLU(src[0], k.Rows, k.H.Pairs, b, y, scratch) {
		return nil // bf16 on AMX: row tiles gated as they are made
	}
	if len(scratch) < min(k.Block, k.Rows)*k.Out {
		return fmt.Errorf("nn: linear_geglu: %d floats of scratch for blocks of %d×%d", len(scratch), k.Block, k.Out)
	}
	for r0 := 0; r0 < k.Rows; r0 += k.Block {
		n := min(k.Block, k.Rows-r0)
		x, h := src[0][r0*k.In:(r0+n)*k.In], scratch[:n*k.Out]
		switch {
		case k.W != nil:
			kernels.LinearPacked(x, n, k.W, b, h)
		case k.H.Pairs != nil: // bf16 pair panels (packBF16)
			kernels.LinearBF16Packed(x, n, k.H.Pairs, b, h)
		default:
			kernels.LinearBF16(x, n, k.In, k.H.Bits, k.Out, b, h)
		}
		kernels.GEGLU(y[r0*c:(r0+n)*c], h, n, c)
	}
	return nil
}

// ForwardGEGLU returns GEGLU(l.Forward(x)) (…×Out/2) in one op that never holds the whole
// product (see linearGEGLUK); with a LoRA update for l in the graph, the two ops it stands for.
func (l *Linear) ForwardGEGLU(x *gorgonia.Node) (*gorgonia.Node, error) {
	xs := x.Shape()
	if l.Parts != nil || l.Out%2 != 0 || len(xs) < 1 || xs[len(xs)-1] != l.In || hasLoRA(x.Graph(), l.Weight.Name) {
		h, err := l.Forward(x)
		if err != nil {
			return nil, err
		}
		return GEGLU(h)
	}
	k := linearGEGLUK{Rows: shapeSize(xs[:len(xs)-1]), In: l.In, Out: l.Out}
	var err error
	if k.W, err = l.packed(); err != nil {
		return nil, err
	}
	if k.W == nil {
		if k.H = l.Weight.Half; k.H == nil || !k.H.BF16 {
			return nil, fmt.Errorf("nn: linear %s: weight neither packed nor bf16", l.Weight.Name)
		}
	}
	budget := gegluScratch
	if k.W != nil && k.W.Half() || k.H != nil && (k.H.Pairs == nil || k.H.Pairs.Widened()) {
		budget *= 4
	}
	k.Block = min(k.Rows, max(gegluMinRows, budget/l.Out/12*12)) // whole 12-row tiles
	scratch := k.Block * l.Out
	if t := kernels.GEGLUTileScratch(k.W); t > 0 {
		scratch = t // row tiles (LinearPackedGEGLU), not blocks
	}
	if k.H != nil {
		if t := kernels.GEGLUTileScratchBF16(k.H.Pairs); t > 0 {
			scratch = t // row tiles on AMX (LinearBF16PackedGEGLU), not blocks
		}
	}
	in := []*gorgonia.Node{x}
	if b := l.Bias.Node(x.Graph()); b != nil {
		k.Bias = true
		in = append(in, b)
	}
	out := append(tensor.Shape{}, xs...)
	out[len(out)-1] = l.Out / 2
	y, err := apply("linear_geglu", k, tensor.Shape{shapeSize(out) + scratch}, in...)
	if err != nil {
		return nil, err
	}
	return apply("linear_geglu_result", viewK{}, out, y)
}
