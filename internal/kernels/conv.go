package kernels

// ConvParams describes a 2-D convolution in NCHW layout with PyTorch semantics (zero padding, no
// dilation, groups 1).
type ConvParams struct {
	N, C, H, W       int // input batch, channels, height, width
	K                int // output channels
	KH, KW           int // kernel size
	StrideH, StrideW int
	PadH, PadW       int
}

// OutSize returns the output height and width, as PyTorch computes them:
// (H + 2·PadH − KH)/StrideH + 1 and likewise for the width.
func (p ConvParams) OutSize() (oh, ow int) {
	return (p.H+2*p.PadH-p.KH)/p.StrideH + 1, (p.W+2*p.PadW-p.KW)/p.StrideW + 1
}

// Conv2D computes y = conv(x, w) + bias: x is N×C×H×W, w is K×C×KH×KW (PyTorch layout), bias has K
// values or is nil, y is N×K×OH×OW, all contiguous.
func Conv2D(p ConvParams, x, w, bias, y []float32) {
	conv2DGeneric(p, x, w, bias, y)
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
