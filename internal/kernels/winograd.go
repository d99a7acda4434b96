package kernels

import (
	"math"
	"sync"
	"sync/atomic"
)

// Winograd F(4×4, 3×3) convolution (Lavin and Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016). Each 4×4 output tile of a 3×3 stride-1 convolution is Aᵀ·[Σ_c U_c ⊙ V_c]·A,
// with U_c = G·g_c·Gᵀ the 6×6 transform of channel c's filter and V_c = Bᵀ·d_c·B that of the
// tile's 6×6 input patch: 36 multiplications per tile and channel instead of 144. Over a block of
// tiles the sums Σ_c are 36 independent GEMMs M_ξ = U_ξ·V_ξ (K×C by C×tiles), run on the SGEMM
// micro-kernels; the transforms before and after are linear maps on 36 values per tile, with the
// bias added in the output transform.
//
// The interpolation points are 0, ±1, ±2 and ∞ (the matrices below). In float32 the result
// differs from direct convolution by a few units of 1e-6 relative to the largest output for
// unit-scale data; the tests measure it.
//
//	Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
//	G  = [1/4 0 0; −1/6 −1/6 −1/6; −1/6 1/6 −1/6; 1/24 1/12 1/6; 1/24 −1/12 1/6; 0 0 1]
//	Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]

const (
	winoOut   = 4  // output tile side
	winoIn    = 6  // input tile side
	winoXi    = 36 // transform points per tile
	winoBlock = 4 << 20
)

// WinogradFilter is the Winograd transform of a 3×3 convolution's weights, made once (at load)
// and used by every Conv2DWinograd call: 36 K×C matrices, 4× the memory of the weights.
type WinogradFilter struct {
	K, C int
	u    []float32 // u[ξ·K·C + k·C + c]
}

// NewWinogradFilter transforms the weights w (K×C×3×3, PyTorch layout).
func NewWinogradFilter(w []float32, k, c int) *WinogradFilter {
	f := new(WinogradFilter)
	f.reset(k, c)
	f.transform(w, nil, false)
	return f
}

// NewWinogradFilterF16 is NewWinogradFilter for weights held as IEEE half bits, widened first.
func NewWinogradFilterF16(w []uint16, k, c int) *WinogradFilter {
	f := new(WinogradFilter)
	f.reset(k, c)
	f.transform(nil, w, false)
	return f
}

// Conv2DWinogradW is Conv2DWinograd with the weights w (K×C×3×3) transformed for this call only,
// into a pooled buffer: no memory is kept between calls, at the cost of the transform (about
// 100 floating-point operations per 3×3 filter, spread over the workers) on every call.
func Conv2DWinogradW(p ConvParams, x, w, bias, y []float32) {
	f := winoFilters.Get().(*WinogradFilter)
	f.reset(p.K, p.C)
	f.transform(w, nil, false)
	Conv2DWinograd(p, x, f, bias, y)
	winoFilters.Put(f)
}

// Conv2DWinogradF16 is Conv2DWinogradW with the weights held as IEEE half bits.
func Conv2DWinogradF16(p ConvParams, x []float32, w []uint16, bias, y []float32) {
	f := winoFilters.Get().(*WinogradFilter)
	f.reset(p.K, p.C)
	f.transform(nil, w, false)
	Conv2DWinograd(p, x, f, bias, y)
	winoFilters.Put(f)
}

// Conv2DWinogradBF16 is Conv2DWinogradW with the weights held as bfloat16 bits.
func Conv2DWinogradBF16(p ConvParams, x []float32, w []uint16, bias, y []float32) {
	f := winoFilters.Get().(*WinogradFilter)
	f.reset(p.K, p.C)
	f.transform(nil, w, true)
	Conv2DWinograd(p, x, f, bias, y)
	winoFilters.Put(f)
}

var winoFilters = sync.Pool{New: func() any { return new(WinogradFilter) }}

// reset sizes a pooled filter for k×c.
func (f *WinogradFilter) reset(k, c int) {
	f.K, f.C = k, c
	if n := winoXi * k * c; cap(f.u) < n {
		f.u = make([]float32, n)
	} else {
		f.u = f.u[:n]
	}
}

// transform fills f from float32 weights w or, when w is nil, half bits h (bfloat16 when bf16
// is set, else IEEE half). Filters are
// transformed 64 input channels at a time into a local block, which is then written as 36
// contiguous runs (one per ξ): writing each filter's 36 values straight to u, K·C apart, missed
// the cache on every store.
func (f *WinogradFilter) transform(w []float32, h []uint16, bf16 bool) {
	const cb = 64
	k, c := f.K, f.C
	if w != nil {
		_ = w[k*c*9-1]
	} else {
		_ = h[k*c*9-1]
	}
	winoParallel(k, max(1, 4096/max(c, 1)), func(lo, hi int) {
		var g [9]float32
		var blk [winoXi][cb]float32
		for kk := lo; kk < hi; kk++ {
			for c0 := 0; c0 < c; c0 += cb {
				n := min(cb, c-c0)
				for i := 0; i < n; i++ {
					o := (kk*c + c0 + i) * 9
					if w != nil {
						copy(g[:], w[o:o+9])
					} else if bf16 {
						for t, v := range h[o : o+9] {
							g[t] = math.Float32frombits(uint32(v) << 16)
						}
					} else {
						for t, v := range h[o : o+9] {
							g[t] = f16ToF32Go(v)
						}
					}
					u := winoFilterTransform(&g)
					for xi := range u {
						blk[xi][i] = u[xi]
					}
				}
				for xi := range blk {
					copy(f.u[xi*k*c+kk*c+c0:xi*k*c+kk*c+c0+n], blk[xi][:n])
				}
			}
		}
	})
}

// winoFilterTransform returns U = G·g·Gᵀ of the 3×3 filter g (row-major), U[6i + j], in
// float32 straight-line code (it runs on every Conv2DWinogradW call).
func winoFilterTransform(g *[9]float32) [winoXi]float32 {
	a0, a1, a2, a3, a4, a5 := winoFilter1D(g[0], g[3], g[6]) // G·g, column 0
	b0, b1, b2, b3, b4, b5 := winoFilter1D(g[1], g[4], g[7])
	c0, c1, c2, c3, c4, c5 := winoFilter1D(g[2], g[5], g[8])
	var u [winoXi]float32
	u[0], u[1], u[2], u[3], u[4], u[5] = winoFilter1D(a0, b0, c0)
	u[6], u[7], u[8], u[9], u[10], u[11] = winoFilter1D(a1, b1, c1)
	u[12], u[13], u[14], u[15], u[16], u[17] = winoFilter1D(a2, b2, c2)
	u[18], u[19], u[20], u[21], u[22], u[23] = winoFilter1D(a3, b3, c3)
	u[24], u[25], u[26], u[27], u[28], u[29] = winoFilter1D(a4, b4, c4)
	u[30], u[31], u[32], u[33], u[34], u[35] = winoFilter1D(a5, b5, c5)
	return u
}

// winoFilter1D is G·(g0, g1, g2).
func winoFilter1D(g0, g1, g2 float32) (u0, u1, u2, u3, u4, u5 float32) {
	s := g0 + g2
	q, r := g0*(1.0/24)+g2*(1.0/6), g1*(1.0/12)
	return g0 * 0.25, (s + g1) * (-1.0 / 6), (s - g1) * (-1.0 / 6), q + r, q - r, g2
}

// Bytes is the memory the transformed weights take.
func (f *WinogradFilter) Bytes() int64 { return 4 * int64(len(f.u)) }

// WinogradApplies reports whether Conv2DWinograd computes the convolution p: a 3×3 kernel with
// stride 1 (any padding that leaves an output).
func WinogradApplies(p ConvParams) bool {
	oh, ow := p.OutSize()
	return p.KH == 3 && p.KW == 3 && p.StrideH == 1 && p.StrideW == 1 && oh > 0 && ow > 0 &&
		p.PadH >= 0 && p.PadW >= 0
}

// Conv2DWinograd computes y = conv(x, w) + bias like Conv2D, for a convolution WinogradApplies
// to, with the weights given as their transform f (f.K = p.K, f.C = p.C). Tiles are processed in
// blocks whose transformed data (36·(C+K) floats per tile) stay within a few MiB; the workers
// share each stage of a block (input transform by channel, the 36 GEMMs, output transform by
// output channel), taking work from a counter.
func Conv2DWinograd(p ConvParams, x []float32, f *WinogradFilter, bias, y []float32) {
	if !WinogradApplies(p) || f.K != p.K || f.C != p.C {
		panic("kernels: Conv2DWinograd: convolution or filter does not fit")
	}
	oh, ow := p.OutSize()
	if p.N <= 0 || p.K <= 0 {
		return
	}
	j := &winoJob{p: p, x: x, f: f, bias: bias, y: y, oh: oh, ow: ow}
	_ = x[p.N*p.C*p.H*p.W-1]
	_ = y[p.N*p.K*oh*ow-1]
	j.th, j.tw = (oh+winoOut-1)/winoOut, (ow+winoOut-1)/winoOut
	tiles := p.N * j.th * j.tw
	tb := winoBlock / (winoXi * (p.C + p.K)) / 32 * 32
	tb = max(32, min(tb, 512, (tiles+15)/16*16))
	j.tb = tb
	buf := winoBufs.Get().(*winoBuf)
	need := winoXi * (p.C + p.K) * tb
	if cap(buf.vm) < need {
		buf.vm = sgemmAligned(need)
	}
	j.v, j.m = buf.vm[:winoXi*p.C*tb], buf.vm[winoXi*p.C*tb:need]
	for t0 := 0; t0 < tiles; t0 += tb {
		j.t0, j.nb = t0, min(tb, tiles-t0)
		winoParallel(p.C, max(1, p.C/(8*workers())), j.input)
		winoParallel(winoXi, 1, j.gemm)
		winoParallel(p.K, max(1, p.K/(8*workers())), j.output)
	}
	winoBufs.Put(buf)
}

// winoBuf holds a call's transformed block (V then M).
type winoBuf struct{ vm []float32 }

var winoBufs = sync.Pool{New: func() any { return new(winoBuf) }}

// winoStrips holds a worker's padded input rows or output rows.
var winoStrips = sync.Pool{New: func() any { s := make([]float32, 0, 4096); return &s }}

// winoJob is one Conv2DWinograd call: the block of tiles [t0, t0+nb) in the order (image, tile
// row, tile column), V as v[ξ·C·tb + c·tb + t], M as m[ξ·K·tb + k·tb + t].
type winoJob struct {
	p              ConvParams
	x, y, bias     []float32
	f              *WinogradFilter
	oh, ow, th, tw int
	tb, t0, nb     int
	v, m           []float32
}

// segments calls fn for each run of the block's tiles on one tile row: image n, tile row ty,
// tile columns [tx, tx+cnt), at offset off within the block.
func (j *winoJob) segments(fn func(n, ty, tx, cnt, off int)) {
	for g := j.t0; g < j.t0+j.nb; {
		n, ty, tx := g/(j.th*j.tw), g/j.tw%j.th, g%j.tw
		cnt := min(j.tw-tx, j.t0+j.nb-g)
		fn(n, ty, tx, cnt, g-j.t0)
		g += cnt
	}
}

// input transforms channels [lo, hi) of the block's tiles into V.
func (j *winoJob) input(lo, hi int) {
	sp := winoStrips.Get().(*[]float32)
	p := &j.p
	ldv := p.C * j.tb
	j.segments(func(n, ty, tx, cnt, off int) {
		ldr := (winoOut*cnt + 2 + 15) &^ 15
		if cap(*sp) < winoIn*ldr {
			*sp = make([]float32, winoIn*ldr)
		}
		strip := (*sp)[:winoIn*ldr]
		iy0, ix0 := ty*winoOut-p.PadH, tx*winoOut-p.PadW
		width := winoOut*cnt + 2
		lo2, hi2 := max(0, -ix0), min(width, p.W-ix0) // valid columns of the strip
		for c := lo; c < hi; c++ {
			img := j.x[(n*p.C+c)*p.H*p.W : (n*p.C+c+1)*p.H*p.W]
			for i := 0; i < winoIn; i++ {
				row := strip[i*ldr : i*ldr+width]
				iy := iy0 + i
				if iy < 0 || iy >= p.H || lo2 >= hi2 {
					clear(row)
					continue
				}
				clear(row[:lo2])
				copy(row[lo2:hi2], img[iy*p.W+ix0+lo2:iy*p.W+ix0+hi2])
				clear(row[hi2:])
			}
			winoInput(j.v[c*j.tb+off:], ldv, strip, ldr, cnt)
		}
	})
	winoStrips.Put(sp)
}

// gemm computes M_ξ = U_ξ·V_ξ for ξ in [lo, hi), each on the calling goroutine.
func (j *winoJob) gemm(lo, hi int) {
	p := &j.p
	kc := p.K * p.C
	for xi := lo; xi < hi; xi++ {
		a := sgemmSrc{data: j.f.u[xi*kc : (xi+1)*kc], ld: p.C}
		b := sgemmSrc{data: j.v[xi*p.C*j.tb : (xi+1)*p.C*j.tb], ld: j.tb}
		sgemmRunOn(1, p.K, j.nb, p.C, 1, &a, &b, 0, j.m[xi*p.K*j.tb:(xi+1)*p.K*j.tb], j.tb, 0, 0, nil, false)
	}
}

// output transforms output channels [lo, hi) of the block's tiles from M into y, adding the bias.
// Tiles wholly inside the output are written in place; the others go through a strip.
func (j *winoJob) output(lo, hi int) {
	sp := winoStrips.Get().(*[]float32)
	p := &j.p
	ldm := p.K * j.tb
	j.segments(func(n, ty, tx, cnt, off int) {
		oy, ox := ty*winoOut, tx*winoOut
		rows, cols := min(winoOut, j.oh-oy), min(winoOut*cnt, j.ow-ox)
		inside := rows == winoOut && cols == winoOut*cnt
		ldo := winoOut * cnt
		if !inside && cap(*sp) < winoOut*ldo {
			*sp = make([]float32, winoOut*ldo)
		}
		for k := lo; k < hi; k++ {
			var b float32
			if j.bias != nil {
				b = j.bias[k]
			}
			out := j.y[(n*p.K+k)*j.oh*j.ow:]
			if inside {
				winoOutput(out[oy*j.ow+ox:], j.ow, j.m[k*j.tb+off:], ldm, cnt, b)
				continue
			}
			strip := (*sp)[:winoOut*ldo]
			winoOutput(strip, ldo, j.m[k*j.tb+off:], ldm, cnt, b)
			for r := 0; r < rows; r++ {
				copy(out[(oy+r)*j.ow+ox:(oy+r)*j.ow+ox+cols], strip[r*ldo:r*ldo+cols])
			}
		}
	})
	winoStrips.Put(sp)
}

// winoParallel calls fn on ranges of at most chunk items covering [0, n), on up to GOMAXPROCS
// goroutines that take ranges from a shared counter (a worker slowed by other load takes fewer).
func winoParallel(n, chunk int, fn func(lo, hi int)) {
	w := min(workers(), (n+chunk-1)/chunk)
	if w <= 1 {
		fn(0, n)
		return
	}
	var next atomic.Int64
	parallelFor(w, 1, func(_, _ int) {
		for {
			lo := int(next.Add(int64(chunk))) - chunk
			if lo >= n {
				return
			}
			fn(lo, min(lo+chunk, n))
		}
	})
}

// winoInputGo is the plain-Go input transform of nt tiles of one channel: tile t's 6×6 patch is
// strip[i·ldr + 4t + j]; its transform Bᵀ·d·B goes to dst[ξ·ld + t], ξ = 6i + j.
func winoInputGo(dst []float32, ld int, strip []float32, ldr, nt int) {
	var tmp [winoXi]float32
	for t := 0; t < nt; t++ {
		for i := 0; i < winoIn; i++ {
			d := strip[i*ldr+4*t : i*ldr+4*t+winoIn]
			v0, v1, v2, v3, v4, v5 := winoInput1D(d[0], d[1], d[2], d[3], d[4], d[5])
			tmp[i*6], tmp[i*6+1], tmp[i*6+2], tmp[i*6+3], tmp[i*6+4], tmp[i*6+5] = v0, v1, v2, v3, v4, v5
		}
		for c := 0; c < winoIn; c++ {
			v0, v1, v2, v3, v4, v5 := winoInput1D(tmp[c], tmp[6+c], tmp[12+c], tmp[18+c], tmp[24+c], tmp[30+c])
			dst[c*ld+t] = v0
			dst[(6+c)*ld+t] = v1
			dst[(12+c)*ld+t] = v2
			dst[(18+c)*ld+t] = v3
			dst[(24+c)*ld+t] = v4
			dst[(30+c)*ld+t] = v5
		}
	}
}

// winoInput1D is Bᵀ·(d0 … d5).
func winoInput1D(d0, d1, d2, d3, d4, d5 float32) (v0, v1, v2, v3, v4, v5 float32) {
	a, b := d4-4*d2, d3-4*d1
	c, e := d4-d2, 2*(d3-d1)
	return 4*d0 - 5*d2 + d4, a + b, a - b, c + e, c - e, 4*d1 - 5*d3 + d5
}

// winoOutputGo is the plain-Go output transform of nt tiles of one output channel: tile t's 36
// values are m[ξ·ld + t]; Aᵀ·M·A plus bias goes to dst[r·ldo + 4t + s], r, s < 4.
func winoOutputGo(dst []float32, ldo int, m []float32, ld, nt int, bias float32) {
	var tmp [winoIn * winoOut]float32
	for t := 0; t < nt; t++ {
		for i := 0; i < winoIn; i++ {
			r := i * 6 * ld
			o0, o1, o2, o3 := winoOutput1D(m[r+t], m[r+ld+t], m[r+2*ld+t], m[r+3*ld+t], m[r+4*ld+t], m[r+5*ld+t])
			tmp[i*4], tmp[i*4+1], tmp[i*4+2], tmp[i*4+3] = o0, o1, o2, o3
		}
		for s := 0; s < winoOut; s++ {
			o0, o1, o2, o3 := winoOutput1D(tmp[s], tmp[4+s], tmp[8+s], tmp[12+s], tmp[16+s], tmp[20+s])
			dst[4*t+s] = o0 + bias
			dst[ldo+4*t+s] = o1 + bias
			dst[2*ldo+4*t+s] = o2 + bias
			dst[3*ldo+4*t+s] = o3 + bias
		}
	}
}

// winoOutput1D is Aᵀ·(m0 … m5).
func winoOutput1D(m0, m1, m2, m3, m4, m5 float32) (o0, o1, o2, o3 float32) {
	p, q := m1+m2, m1-m2
	r, s := m3+m4, m3-m4
	return m0 + p + r, q + 2*s, p + 4*r, q + 8*s + m5
}
