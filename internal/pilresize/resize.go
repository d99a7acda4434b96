// Package pilresize resizes 8-bit images exactly as Pillow's Image.resize does, so that
// preprocessing written for PIL (diffusers' VaeImageProcessor, transformers'
// CLIPImageProcessor) gives the same bytes here.
//
// It is a transcription of Pillow's libImaging/Resample.c for 8-bit bands. golang.org/x/image/draw
// cannot stand in: its kernels (CatmullRom is a bicubic with a = −0.5 like PIL's) resample in
// 16-bit premultiplied colour with float64 weights and round once at the end, while Pillow
// quantises the weights to 22 fraction bits (rounded away from zero), rounds to 8 bits after each
// pass and places its taps differently at the edges — results differ by a level or more on many
// pixels.
//
// What Pillow does: separable passes, horizontal first (only when the width changes), then
// vertical (only when the height changes), each rounding to uint8. For output pixel xx the taps
// lie around center = (xx + 0.5)·scale with scale = in/out; when shrinking the filter is stretched
// by scale (antialiasing), so support = filter support · max(scale, 1). The weights
// filter((x − center + 0.5)/max(scale, 1)) are normalised to sum 1, then turned into integers
// with 22 fraction bits; a pass sums pixel·weight in int32 from 2^21 (rounding) and clips the
// result shifted right by 22 to 0…255.
package pilresize

import (
	"fmt"
	"math"
)

// Filter is a Pillow resampling filter.
type Filter int

const (
	// Bicubic is Image.BICUBIC (a = −0.5, support 2).
	Bicubic Filter = iota
	// Lanczos is Image.LANCZOS (a 3-lobed Lanczos window, support 3), diffusers'
	// VaeImageProcessor default.
	Lanczos
)

func (f Filter) String() string {
	switch f {
	case Bicubic:
		return "bicubic"
	case Lanczos:
		return "lanczos"
	}
	return fmt.Sprintf("Filter(%d)", int(f))
}

// support is the filter's half-width at scale 1.
func (f Filter) support() float64 {
	if f == Lanczos {
		return 3
	}
	return 2
}

// weight evaluates the filter at x.
func (f Filter) weight(x float64) float64 {
	if f == Lanczos {
		return lanczos(x)
	}
	return bicubic(x)
}

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

// sinc is Pillow's sinc_filter.
func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x = x * math.Pi
	return math.Sin(x) / x
}

// lanczos is Pillow's lanczos_filter: the sinc truncated by a 3-lobed sinc window.
func lanczos(x float64) float64 {
	if -3 <= x && x < 3 {
		return sinc(x) * sinc(x/3)
	}
	return 0
}

const precisionBits = 32 - 8 - 2 // Pillow's PRECISION_BITS

// coeffs are one pass's taps: output pixel i reads input pixels first[i] … first[i]+n[i]−1
// with weights w[i*ksize : i*ksize+n[i]].
type coeffs struct {
	first, n []int
	w        []int32
	ksize    int
}

// precomputeCoeffs is Pillow's precompute_coeffs followed by normalize_coeffs_8bpc for a pass
// from inSize to outSize pixels over the whole input.
func precomputeCoeffs(inSize, outSize int, f Filter) coeffs {
	scale := float64(inSize) / float64(outSize)
	filterscale := max(scale, 1)
	support := f.support() * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{first: make([]int, outSize), n: make([]int, outSize), w: make([]int32, outSize*ksize), ksize: ksize}
	k := make([]float64, ksize)
	ss := 1 / filterscale
	for xx := 0; xx < outSize; xx++ {
		center := float64(float64(xx)+0.5) * scale
		xmin := max(int(center-support+0.5), 0) // C's (int) truncates toward zero, as Go's int() does
		xmax := min(int(center+support+0.5), inSize) - xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w := f.weight(float64((float64(x+xmin)-center)+0.5) * ss)
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

// Resize resizes an image of w×h pixels with ch interleaved 8-bit channels each (row-major,
// no padding: len(src) = w·h·ch) to ow×oh exactly as Pillow's Image.resize((ow, oh), filter)
// does for an "L" (ch = 1) or "RGB" (ch = 3) image. It returns src itself when the size does not
// change, and an error for sizes that are not positive or a src of the wrong length.
func Resize(src []uint8, w, h, ch, ow, oh int, f Filter) ([]uint8, error) {
	if w < 1 || h < 1 || ow < 1 || oh < 1 || ch < 1 {
		return nil, fmt.Errorf("pilresize: cannot resize %dx%d (%d channels) to %dx%d", w, h, ch, ow, oh)
	}
	if len(src) != w*h*ch {
		return nil, fmt.Errorf("pilresize: %d bytes for %dx%d pixels of %d channels, want %d", len(src), w, h, ch, w*h*ch)
	}
	if f != Bicubic && f != Lanczos {
		return nil, fmt.Errorf("pilresize: unknown filter %v", f)
	}
	img := src
	acc := make([]int32, ch)
	if ow != w { // horizontal pass
		c := precomputeCoeffs(w, ow, f)
		out := make([]uint8, ow*h*ch)
		for y := 0; y < h; y++ {
			row := img[y*w*ch : (y+1)*w*ch]
			for xx := 0; xx < ow; xx++ {
				k := c.w[xx*c.ksize:]
				for b := range acc {
					acc[b] = 1 << (precisionBits - 1)
				}
				for x := 0; x < c.n[xx]; x++ {
					p := row[(c.first[xx]+x)*ch:]
					for b := range acc {
						acc[b] += int32(p[b]) * k[x]
					}
				}
				o := (y*ow + xx) * ch
				for b, v := range acc {
					out[o+b] = clip8(v)
				}
			}
		}
		img, w = out, ow
	}
	if oh != h { // vertical pass
		c := precomputeCoeffs(h, oh, f)
		out := make([]uint8, w*oh*ch)
		for yy := 0; yy < oh; yy++ {
			k := c.w[yy*c.ksize:]
			for xx := 0; xx < w; xx++ {
				for b := range acc {
					acc[b] = 1 << (precisionBits - 1)
				}
				for y := 0; y < c.n[yy]; y++ {
					p := img[((c.first[yy]+y)*w+xx)*ch:]
					for b := range acc {
						acc[b] += int32(p[b]) * k[y]
					}
				}
				o := (yy*w + xx) * ch
				for b, v := range acc {
					out[o+b] = clip8(v)
				}
			}
		}
		img = out
	}
	return img, nil
}
