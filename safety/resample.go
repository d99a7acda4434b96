package safety

import "math"

// PIL's bicubic resampling, to the bit.
//
// CLIPImageProcessor resizes with PIL's Image.resize(size, Image.BICUBIC) on the 8-bit image,
// and the checker's scores depend on those bytes, so this is a transcription of Pillow's
// libImaging/Resample.c for 8-bit images, not a general resampler. golang.org/x/image/draw
// cannot stand in: its CatmullRom kernel is a bicubic with a = −0.5 like PIL's, but it
// resamples in 16-bit premultiplied colour with its own rounding, computes the weights in
// float64 without PIL's fixed-point quantisation (22 fraction bits, rounded away from zero),
// rounds once after both passes instead of to 8 bits after each, and places its taps
// differently at the edges — its results differ from PIL's by a level or more on many pixels.
//
// What Pillow does: separable passes, horizontal first (only when the width changes), then
// vertical (only when the height changes), each rounding to uint8. For each output pixel
// xx the taps lie around center = (xx + 0.5)·scale with scale = in/out; when shrinking the
// filter is stretched by scale (antialiasing), so support = 2·max(scale, 1). The weights
// bicubic((x − center + 0.5)/max(scale, 1)) are normalised to sum 1, then turned into integers
// with 22 fraction bits; a pass sums pixel·weight in int32 from 2^21 (rounding) and clips the
// result shifted right by 22 to 0…255.

const precisionBits = 32 - 8 - 2 // Pillow's PRECISION_BITS

// bicubic is Pillow's bicubic_filter (a = −0.5). The explicit conversions keep the compiler from
// fusing multiplies and adds, which C compiles to separate roundings here.
func bicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		t := float64((a+2)*x) - (a + 3)
		return float64(float64(t*x)*x) + 1
	}
	if x < 2 {
		t := float64(float64(x-5)*x) + 8
		t = float64(t*x) - 4
		return t * a
	}
	return 0
}

// coeffs are one pass's taps: output pixel i reads input pixels first[i] … first[i]+n[i]−1
// with weights w[i*ksize : i*ksize+n[i]].
type coeffs struct {
	first, n []int
	w        []int32
	ksize    int
}

// precomputeCoeffs is Pillow's precompute_coeffs followed by normalize_coeffs_8bpc for a pass
// from inSize to outSize pixels over the whole input (box 0…inSize).
func precomputeCoeffs(inSize, outSize int) coeffs {
	const support0 = 2.0 // bicubic's support
	scale := float64(inSize) / float64(outSize)
	filterscale := max(scale, 1)
	support := support0 * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{first: make([]int, outSize), n: make([]int, outSize), w: make([]int32, outSize*ksize), ksize: ksize}
	k := make([]float64, ksize)
	ss := 1 / filterscale
	for xx := 0; xx < outSize; xx++ {
		center := float64(xx) + 0.5
		center = float64(center * scale)
		xmin := int(center - support + 0.5) // C's (int) truncates toward zero, as Go's int() does
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w := bicubic(float64((float64(x+xmin)-center)+0.5) * ss)
			k[x] = w
			ww += w
		}
		for x := 0; x < xmax; x++ {
			v := k[x]
			if ww != 0 {
				v /= ww
			}
			p := float64(v * (1 << precisionBits))
			if v < 0 {
				c.w[xx*ksize+x] = int32(-0.5 + p)
			} else {
				c.w[xx*ksize+x] = int32(0.5 + p)
			}
		}
		c.first[xx], c.n[xx] = xmin, xmax
	}
	return c
}

// clip8 is Pillow's clip8: the accumulator shifted right by the fraction bits, clamped to a byte.
func clip8(v int32) uint8 {
	v >>= precisionBits
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return uint8(v)
}

// resizeBicubic resizes an RGB image (w×h pixels of 3 bytes, row-major) to ow×oh exactly as
// PIL's Image.resize((ow, oh), Image.BICUBIC) does for an "RGB" image.
func resizeBicubic(src []uint8, w, h, ow, oh int) []uint8 {
	img := src
	if ow != w { // horizontal pass
		c := precomputeCoeffs(w, ow)
		out := make([]uint8, ow*h*3)
		for y := 0; y < h; y++ {
			row := img[y*w*3 : (y+1)*w*3]
			for xx := 0; xx < ow; xx++ {
				k := c.w[xx*c.ksize:]
				s0, s1, s2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
				for x := 0; x < c.n[xx]; x++ {
					p := row[(c.first[xx]+x)*3:]
					s0 += int32(p[0]) * k[x]
					s1 += int32(p[1]) * k[x]
					s2 += int32(p[2]) * k[x]
				}
				o := (y*ow + xx) * 3
				out[o], out[o+1], out[o+2] = clip8(s0), clip8(s1), clip8(s2)
			}
		}
		img, w = out, ow
	}
	if oh != h { // vertical pass
		c := precomputeCoeffs(h, oh)
		out := make([]uint8, w*oh*3)
		for yy := 0; yy < oh; yy++ {
			k := c.w[yy*c.ksize:]
			for xx := 0; xx < w; xx++ {
				s0, s1, s2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
				for y := 0; y < c.n[yy]; y++ {
					p := img[((c.first[yy]+y)*w+xx)*3:]
					s0 += int32(p[0]) * k[y]
					s1 += int32(p[1]) * k[y]
					s2 += int32(p[2]) * k[y]
				}
				o := (yy*w + xx) * 3
				out[o], out[o+1], out[o+2] = clip8(s0), clip8(s1), clip8(s2)
			}
		}
		img = out
	}
	if &img[0] == &src[0] { // neither pass: PIL returns a copy
		img = append([]uint8(nil), src...)
	}
	return img
}
