package kernels

// ConvParams describes a 2-D convolution in NCHW layout with PyTorch semantics (zero padding, no
// dilation, groups 1).
type ConvParams struct {
	N, C, H, W       int // input batch, channels, height, width
	K                int // output channels
	KH, KW           int // kernel size
	StrideH, StrideW int
	PadH, PadW       int

	// OutPlane, when > 0, is the distance in y between the starts of consecutive output planes
	// (image n's plane k at (n·K + k)·OutPlane): a band of rows written straight into a taller
	// output. 0 means OH·OW, planes back to back. Conv2D, Conv2DF16 and the Winograd kernels
	// honour it, the bf16 ones where ConvBF16OutPlane says (the direct AMX convolution); the
	// others require 0.
	OutPlane int
}

// outPlane is the distance between y's output planes (OutPlane, or OH·OW).
func (p ConvParams) outPlane() int {
	if p.OutPlane > 0 {
		return p.OutPlane
	}
	oh, ow := p.OutSize()
	return oh * ow
}

// OutSize returns the output height and width, as PyTorch computes them:
// (H + 2·PadH − KH)/StrideH + 1 and likewise for the width.
func (p ConvParams) OutSize() (oh, ow int) {
	return (p.H+2*p.PadH-p.KH)/p.StrideH + 1, (p.W+2*p.PadW-p.KW)/p.StrideW + 1
}

// Conv2D computes y = conv(x, w) + bias: x is N×C×H×W, w is K×C×KH×KW (PyTorch layout), bias has K
// values or is nil, y is N×K×OH×OW, all contiguous.
//
// Each image is a GEMM y_n = W·im2col(x_n) with W as the K×(C·KH·KW) matrix (the whole batch is
// one GEMM when OH·OW is a multiple of 16); the im2col matrix is never formed: the GEMM's B packer
// reads it straight from x (a plain matrix for 1×1 stride-1 kernels without padding). Each output
// tile starts as the bias, written just before the tile's first update while it is in cache. No
// workspace beyond the pooled packing buffers is used, whatever the image size.
func Conv2D(p ConvParams, x, w, bias, y []float32) {
	conv2D(p, x, &sgemmSrc{data: w, ld: p.C * p.KH * p.KW}, bias, y)
}

// Conv2DF16 is Conv2D with the weights w (K×C×KH×KW) kept in IEEE half precision (raw bits, as
// stored in fp16 checkpoints); they are widened to float32 while being packed.
func Conv2DF16(p ConvParams, x []float32, w []uint16, bias, y []float32) {
	conv2D(p, x, &sgemmSrc{half: w, ld: p.C * p.KH * p.KW}, bias, y)
}

func conv2D(p ConvParams, x []float32, a *sgemmSrc, bias, y []float32) {
	oh, ow := p.OutSize()
	if p.N <= 0 || p.K <= 0 || oh <= 0 || ow <= 0 {
		return
	}
	ohw, chw, ckk, ldy := oh*ow, p.C*p.H*p.W, p.C*p.KH*p.KW, p.outPlane()
	dense := p.KH == 1 && p.KW == 1 && p.StrideH == 1 && p.StrideW == 1 && p.PadH == 0 && p.PadW == 0
	if p.N > 1 && ohw%sgemmNR == 0 && ckk > 0 {
		// The whole batch as one GEMM, W·[im2col(x_0) … im2col(x_N−1)]: the weights are read
		// (and packed) once for all images, and the workers balance over all of them.
		b := sgemmSrc{data: x, ld: p.H * p.W, batchCols: ohw, batchStride: chw}
		if !dense {
			b.conv, b.cp, b.ow = true, p, ow
		}
		b.pairs, b.pairK = a.pairs, a.pairK
		sgemmRun(p.K, p.N*ohw, ckk, 1, a, &b, 0, y, ldy, ohw, p.K*ldy, bias, true)
		return
	}
	for n := 0; n < p.N; n++ {
		yn := y[n*p.K*ldy : n*p.K*ldy+(p.K-1)*ldy+ohw]
		xn := x[n*chw : (n+1)*chw]
		var b sgemmSrc
		if dense {
			b = sgemmSrc{data: xn, ld: p.H * p.W}
		} else {
			b = sgemmSrc{data: xn, conv: true, cp: p, ow: ow}
		}
		b.pairs, b.pairK = a.pairs, a.pairK
		sgemmRun(p.K, ohw, ckk, 1, a, &b, 0, yn, ldy, 0, 0, bias, true) // bias fused per tile
	}
}

// conv2DGeneric is the plain-Go twin of Conv2D: direct loops, used as the test oracle.
func conv2DGeneric(p ConvParams, x, w, bias, y []float32) {
	oh, ow := p.OutSize()
	for n := 0; n < p.N; n++ {
		for k := 0; k < p.K; k++ {
			out := y[(n*p.K+k)*oh*ow : (n*p.K+k+1)*oh*ow]
			var b0 float32
			if bias != nil {
				b0 = bias[k]
			}
			for i := range out {
				out[i] = b0
			}
			for c := 0; c < p.C; c++ {
				in := x[(n*p.C+c)*p.H*p.W : (n*p.C+c+1)*p.H*p.W]
				for kh := 0; kh < p.KH; kh++ {
					for kw := 0; kw < p.KW; kw++ {
						wv := w[((k*p.C+c)*p.KH+kh)*p.KW+kw]
						for oy := 0; oy < oh; oy++ {
							iy := oy*p.StrideH + kh - p.PadH
							if iy < 0 || iy >= p.H {
								continue
							}
							row := in[iy*p.W : (iy+1)*p.W]
							o := out[oy*ow : (oy+1)*ow]
							for ox := range o {
								ix := ox*p.StrideW + kw - p.PadW
								if ix >= 0 && ix < p.W {
									o[ox] += wv * row[ix]
								}
							}
						}
					}
				}
			}
		}
	}
}
