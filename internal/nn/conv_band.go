package nn

import (
	"fmt"
	"sync"

	"github.com/smallsd/smallsd/internal/kernels"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// bandConv is a 3×3 stride-1 convolution kernel (convK or convHalfK) that can be re-run on a
// band of rows: withParams returns it for other parameters.
type bandConv interface {
	kernel
	withParams(p kernels.ConvParams) kernel
	// planes says whether the kernel honours OutPlane for a band's parameters p, so that the
	// band's output rows can be written straight into the whole output instead of copied there.
	planes(p kernels.ConvParams) bool
}

func (k convK) withParams(p kernels.ConvParams) kernel     { k.P = p; return k }
func (k convHalfK) withParams(p kernels.ConvParams) kernel { k.P = p; return k }
func (k convK) planes(kernels.ConvParams) bool             { return true }

// planes: the Winograd kernels and the half im2col one honour OutPlane, the bf16 ones where they
// run the direct AMX convolution.
func (k convHalfK) planes(p kernels.ConvParams) bool {
	if !k.Wino && (k.W.Pairs != nil || k.W.BF16) {
		return kernels.ConvBF16OutPlane(p)
	}
	return true
}

// bandBytes bounds the band of input rows a banded convolution gathers at once (the band of
// output rows it writes is about as large): small next to the 64–256 MiB tensors it saves at
// 512×512, large enough that each band still has hundreds of Winograd tiles.
var bandBytes = 16 << 20 // a variable so tests can force many small bands

// convBandK runs a 3×3, stride-1, padding-1 convolution (P: the whole-image parameters, on the
// convolution's input, i.e. after the upsampling when Up) band by band of Rows output rows:
// each band's input rows plus one halo row either side are gathered into a workspace (zero rows
// beyond the image replace the vertical padding), convolved, and the band's output rows copied
// into place. Rows is a multiple of 4, so every band starts on the same Winograd tile grid as the
// whole image, and each output element sees the same inputs in the same order: the result is
// bit-identical to the unbanded convolution (TestConvBandedBitIdentical; the native-bf16 packed
// kernels, used only where VDPBF16PS pays, have not been run banded on a machine that picks them).
//
// Up reads x at half the size and upsamples it (nearest ×2) while gathering, so the ×2 tensor is
// never formed. Without Up the result may overwrite x (inPlaceArgs): output plane k only
// overwrites input plane k (K ≤ C, same spatial size; in a batch, image n's planes land on image
// n's or earlier ones, never on rows not yet gathered), bands go top to bottom, and the one input
// row a later band needs from above (its top halo) is kept aside before the band's output is
// written.
//
// Norm, when set (not with Up), is a GroupNorm (+ SiLU) of x applied while gathering: the
// convolution is of the normalised x, which is never formed whole. Its gamma and beta are the
// last two inputs.
type convBandK struct {
	Inner bandConv
	P     kernels.ConvParams
	Up    bool
	Rows  int
	Norm  *bandNorm
}

// bandNorm is the GroupNorm a convBandK applies to its input.
type bandNorm struct {
	Groups int
	Eps    float32
	SiLU   bool
}

func (k convBandK) inPlaceArgs() []int {
	if k.Up || k.P.K > k.P.C {
		return nil
	}
	return []int{0}
}

var bandPool sync.Pool // *[]float32 workspaces of convBandK

func (k convBandK) run(dst []float32, src [][]float32) error {
	p := k.P
	c, h, w, kk := p.C, p.H, p.W, p.K // h×w: the convolution's input (= output) size
	ih, iw := h, w                    // x's size
	if k.Up {
		ih, iw = h/2, w/2
	}
	in := (k.Rows + 2) * c * w
	band := p // a band's parameters (rows: at most k.Rows)
	band.N, band.H, band.PadH, band.OutPlane = 1, k.Rows+2, 0, h*w
	planes := k.Inner.planes(band)
	outLen := k.Rows * kk * w // the band's output, unless written straight into y
	if planes {
		outLen = 0
	}
	coefLen := 0 // GroupNorm's mean, scale and shift per (sample, channel)
	if k.Norm != nil {
		coefLen = 3 * p.N * c
	}
	need := in + outLen + c*w + coefLen
	bp, _ := bandPool.Get().(*[]float32)
	if bp == nil || cap(*bp) < need {
		// One size for every band (up to two bandBytes and the halo rows of 512 channels of
		// 512), so the pool keeps one buffer rather than one per layer shape.
		b := make([]float32, max(need, bandBytes/2+3*512*512))
		bp = &b
	}
	ws := (*bp)[:need]
	defer bandPool.Put(bp)
	xin, out, carry := ws[:in], ws[in:in+outLen], ws[in+outLen:in+outLen+c*w]
	args := append([][]float32{nil}, src[1:]...)
	var nm, ns, nb []float32
	if k.Norm != nil {
		coef := ws[need-coefLen:]
		nm, ns, nb = coef[:p.N*c], coef[p.N*c:2*p.N*c], coef[2*p.N*c:]
		gamma, beta := src[len(src)-2], src[len(src)-1]
		kernels.GroupNormCoef(src[0], p.N, c, h*w, k.Norm.Groups, k.Norm.Eps, gamma, beta, nm, ns, nb)
		args = args[:len(args)-2]
	}
	for n := 0; n < p.N; n++ {
		x := src[0][n*c*ih*iw : (n+1)*c*ih*iw]
		y := dst[n*kk*h*w : (n+1)*kk*h*w]
		for y0 := 0; y0 < h; y0 += k.Rows {
			r := min(k.Rows, h-y0)
			rw := (r + 2) * w
			// Gather rows y0-1 … y0+r of every channel (the copies split over the cores: on one
			// they cost a tenth of the convolution's time).
			kernels.ParallelFor(c, 1, func(lo, hi int) {
				for ch := lo; ch < hi; ch++ {
					plane := x[ch*ih*iw : (ch+1)*ih*iw]
					for i := 0; i < r+2; i++ {
						row := xin[ch*rw+i*w : ch*rw+(i+1)*w]
						switch yy := y0 - 1 + i; {
						case yy < 0 || yy >= h:
							clear(row)
						case i == 0 && !k.Up:
							copy(row, carry[ch*w:(ch+1)*w]) // x's row may be overwritten already
						case k.Up:
							lo := plane[(yy/2)*iw : (yy/2+1)*iw]
							for j, v := range lo {
								row[2*j], row[2*j+1] = v, v
							}
						case k.Norm != nil:
							i := n*c + ch
							kernels.NormAffine(plane[yy*w:(yy+1)*w], row, nm[i], ns[i], nb[i], k.Norm.SiLU)
						default:
							copy(row, plane[yy*w:(yy+1)*w])
						}
					}
				}
			})
			if !k.Up && y0+r < h {
				// The next band's top halo is this band's last row, which writing the band's
				// output may overwrite when the result lives in x.
				for ch := 0; ch < c; ch++ {
					copy(carry[ch*w:(ch+1)*w], xin[ch*rw+r*w:ch*rw+(r+1)*w])
				}
			}
			bp := band
			bp.H = r + 2
			args[0] = xin[:c*rw]
			if planes {
				// Straight into y: its rows y0 … y0+r−1, which x may share, are gathered already.
				if err := k.Inner.withParams(bp).run(y[y0*w:], args); err != nil {
					return err
				}
				continue
			}
			bp.OutPlane = 0
			if err := k.Inner.withParams(bp).run(out[:kk*r*w], args); err != nil {
				return err
			}
			kernels.ParallelFor(kk, 1, func(lo, hi int) {
				for o := lo; o < hi; o++ {
					copy(y[o*h*w+y0*w:o*h*w+(y0+r)*w], out[o*r*w:(o+1)*r*w])
				}
			})
		}
	}
	clear(args)
	return nil
}

// winoRowTiles is the fewest 4-wide Winograd tiles in an output row that the Winograd kernels
// run row by row (kernels.Conv2DWinograd's narrow-row packing starts below it).
const winoRowTiles = 16

// bandRows is the rows of a band of a banded convolution with c input channels of width w: a
// multiple of 4 (the Winograd tile) keeping the gathered input within bandBytes.
func bandRows(c, w, h int) int {
	r := max(4, (bandBytes/4/((c+1)*w))&^3)
	return min(r, (h+3)&^3)
}

// convBanded adds c's convolution of x (nearest-upsampled ×2 first when up) computed band by
// band (convBandK). ok is false when c is not a 3×3, stride-1, padding-1 convolution, has a
// low-rank update in x's graph, or runs as Winograd on rows narrower than 64: the caller then
// takes the plain path.
//
// With norm (not with up), the convolution is of silu(norm(x)), normalised band by band.
func (c *Conv2d) convBanded(x *gorgonia.Node, up bool, norm *GroupNorm) (y *gorgonia.Node, ok bool, err error) {
	xs := x.Shape()
	if c.Kernel != 3 || c.Stride != 1 || c.Pad != 1 || len(xs) != 4 || xs[1] != c.In || hasLoRA(x.Graph(), c.Weight.Name) {
		return nil, false, nil
	}
	if norm != nil && (up || norm.Channels != c.In || norm.Groups < 1 || c.In%norm.Groups != 0) {
		return nil, false, nil
	}
	h, w := xs[2], xs[3]
	if up {
		h, w = 2*h, 2*w
	}
	p := kernels.ConvParams{N: xs[0], C: c.In, H: h, W: w, K: c.Out, KH: 3, KW: 3,
		StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
	if shapeSize(tensor.Shape{p.N, p.C, h, w}) < 0 {
		return nil, false, fmt.Errorf("nn: conv2d: input %v too large", xs)
	}
	g := x.Graph()
	wino := useWinograd(p)
	if hw := c.Weight.Half; hw != nil {
		wino = convWinograd(p, hw)
	}
	if wino && (w+3)/4 < winoRowTiles {
		// Narrow rows are packed several to a strip in the Winograd kernels, differently for a
		// band than for the whole image, and the last bits of the results differ: not worth it
		// at the sizes where the memory is small anyway.
		return nil, false, nil
	}
	k := convBandK{P: p, Up: up, Rows: bandRows(p.C, w, h)}
	out := tensor.Shape{p.N, p.K, h, w}
	args := []*gorgonia.Node{x}
	if hw := c.Weight.Half; hw != nil {
		k.Inner = convHalfK{Bias: true, Wino: wino, W: hw}
	} else {
		k.Inner = convK{Bias: true, Wino: wino}
		args = append(args, c.Weight.Node(g))
	}
	args = append(args, c.Bias.Node(g))
	if norm != nil {
		k.Norm = &bandNorm{Groups: norm.Groups, Eps: norm.Eps, SiLU: true}
		args = append(args, norm.Weight.Node(g), norm.Bias.Node(g))
	}
	y, err = apply("conv2d_band", k, out, args...)
	return y, err == nil, err
}

// ForwardBanded is Forward computed in bands of output rows (the same values, bit for bit): the
// result may take x's memory when x is not read afterwards, so the convolution needs only a
// band-sized workspace beside one tensor instead of its input and output side by side. Other
// convolutions than 3×3 stride 1 padding 1, and those with a low-rank update, take Forward.
func (c *Conv2d) ForwardBanded(x *gorgonia.Node) (*gorgonia.Node, error) {
	y, ok, err := c.convBanded(x, false, nil)
	if !ok && err == nil {
		return c.Forward(x)
	}
	return y, err
}

// ForwardBandedNormSiLU is ForwardBanded of norm.ForwardSiLU(x) with the normalisation done
// while each band's input rows are gathered: the normalised tensor is never formed, and x is
// read twice (statistics, then bands) instead of normalised in a pass of its own. The values
// are those of the two ops, bit for bit where the rows are a multiple of 8 wide. Where the
// convolution cannot run banded, it is the two ops.
func (c *Conv2d) ForwardBandedNormSiLU(x *gorgonia.Node, norm *GroupNorm) (*gorgonia.Node, error) {
	y, ok, err := c.convBanded(x, false, norm)
	if ok || err != nil {
		return y, err
	}
	if x, err = norm.ForwardSiLU(x); err != nil {
		return nil, err
	}
	return c.ForwardBanded(x)
}

// ForwardBanded is Forward without the upsampled tensor (the same values, bit for bit): the
// convolution reads x through the nearest ×2 upsampling, band by band of output rows, so at
// 512×512 the VAE decoder's last upsampler holds its 256 MiB result beside a 64 MiB input rather
// than beside a 256 MiB upsampled copy too. It falls back to Forward where the convolution is
// not 3×3 stride 1 padding 1 or has a low-rank update.
func (u *Upsample2D) ForwardBanded(x *gorgonia.Node) (*gorgonia.Node, error) {
	y, ok, err := u.Conv.convBanded(x, true, nil)
	if !ok && err == nil {
		return u.Forward(x)
	}
	return y, err
}
