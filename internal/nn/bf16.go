package nn

import "github.com/smallsd/smallsd/internal/kernels"

// convWinograd reports whether a convolution with the 16-bit weight w runs as Winograd. With
// bf16 weights on a CPU that multiplies bf16 natively (kernels.BF16Native) the implicit GEMM
// runs at about 1.7× its float32 speed while Winograd stays float32 on the widened weights
// (bf16 inside Winograd F(4×4, 3×3) was measured at 2.5% relative RMS error per convolution), so
// Winograd pays only from 128 output tiles: on the AMD EPYC Zen 5 (2 cores, GFLOP per CPU-second,
// BenchmarkConv2DBF16, weights packed at load, load 4–5) 2×640×32×32 (128 tiles) ran at 290–300
// as bf16 GEMM and 343–354 as Winograd, 2×320×64×64 (512 tiles) at 337 and 382, 2×1280×16×16
// (32 tiles) at 313–325 and 180–219. On AMX the direct convolution (kernels.AMX) beats Winograd
// at every size: 2.0–2.4 TFLOP/s on 2 cores of a Xeon against Winograd's 1.3–1.8 (the direct
// convolution's FLOPs) on the same bf16 weights widened.
func convWinograd(p kernels.ConvParams, w *HalfWeight) bool {
	if !useWinograd(p) {
		return false
	}
	if !w.BF16 || !kernels.BF16Native() {
		return true
	}
	if kernels.AMX() {
		return false
	}
	oh, ow := p.OutSize()
	return p.N*((oh+3)/4)*((ow+3)/4) >= 128
}

// bf16 reports whether the attention multiplies in bf16 (kernels.AttentionBF16): when its
// projections hold bf16 weights, i.e. the model was built for pipeline.BF16.
func (a *Attention) bf16() bool {
	return a.Q.Weight.Half != nil && a.Q.Weight.Half.BF16
}

// packBF16 replaces the bits of a Linear's or a convolution's bf16 weight (out×in, K×C×KH×KW)
// by the panels the CPU's bf16 path reads (kernels.PackLinearBF16, PackConvBF16): pair panels
// where the bf16 kernels run (kernels.BF16Native; a convolution wider than 1×1 is packed by its
// first GEMM, so one that only runs as Winograd keeps its bits; on AMX a convolution is put in the
// direct convolution's order), else, for a Linear, the float32
// kernels' panels held as bf16 bits and widened per call (a convolution keeps its bits), so that
// no call packs them again. The panels take the bits' memory; the bits become garbage (unless
// they alias a mapped file).
func packBF16(p Param) Param { return packBF16Stride(p, 1) }

// packBF16Stride is packBF16 for a convolution of the given stride.
func packBF16Stride(p Param, stride int) Param {
	h := p.Half
	if h == nil || !h.BF16 || h.Pairs != nil {
		return p
	}
	var w *kernels.BF16Weight
	switch s := h.Shape; len(s) {
	case 2:
		w = kernels.PackLinearBF16(h.Bits, s[0], s[1])
	case 4:
		w = kernels.PackConvBF16(h.Bits, s[0], s[1], s[2], s[3], stride)
	default:
		return p
	}
	packed := *h
	packed.Bits, packed.Pairs = nil, w
	p.Half = &packed
	if w.Packed() || w.Widened() || w.Reordered() {
		dropped(w.Bytes())
	}
	return p
}
