package kernels

import (
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
	winoOut = 4  // output tile side
	winoIn  = 6  // input tile side
	winoXi  = 36 // transform points per tile
)

// Workspace bounds in floats. They are variables so that tests can shrink them to reach every
// blocking path on small shapes.
var (
	// winoBlockMax bounds a tile block's transformed inputs and products, 36·(cb + K) floats per
	// tile for a channel block of cb input channels.
	winoBlockMax = 6 << 20
	// winoTilesMax is the most tiles in a block (the GEMMs' n).
	winoTilesMax = 512
	// winoFilterWhole is the largest filter transform (36·K·C floats) made once per call for all
	// tile blocks; larger ones are made per block of winoFilterBlock floats (kb output channels
	// by cb input channels) as the GEMMs need them.
	winoFilterWhole = 10 << 20
	winoFilterBlock = 4 << 20
	// winoChanBlock is the input-channel block of a blocked filter transform.
	winoChanBlock = 320
	// winoFusedTiles is the most tiles in a call whose filters are transformed inside the
	// GEMM workers (fused, see fusedGemm) rather than beforehand for all workers; winoFusedRows
	// and winoFusedChan are the output and input channels of one worker's transformed block,
	// 36·rows·chan floats (552 KiB) kept in its L2. On the Zen 5 (2 cores, ms per call, fused
	// against transformed for all workers): 2×1280×16×16→1280 20.7 against 32.4 (direct: 43),
	// 2×2560×16×16→1280 42 against 63, 2×1280×32×32→1280 70 against 88, 2×640×32×32→640 16.1
	// against 18.5; but with 256 and 512 tiles (the VAE's and the UNet's 64×64 layers) 21–44 against
	// 18–34, as every worker's block then streams megabytes of V. 24 rows, or 160 channels, were
	// no faster.
	winoFusedTiles = 128
	winoFusedRows  = 12
	winoFusedChan  = 320
	// winoRowTiles is the narrowest tile row run on its own: narrower rows (images of less than
	// 64 columns) are laid side by side in the input strip with one unused tile between them, so
	// that the transforms still see runs of 16 tiles; the unused tiles are dropped before the
	// GEMMs (they were a fifth of the columns at 16×16).
	winoRowTiles = 16
	// winoInPlace lets the input transform read the inner tiles of a tile row straight from the
	// image (winoJob.input); tests turn it off to compare with the strip path.
	winoInPlace = true
)

// WinogradFilter is the Winograd transform of a 3×3 convolution's weights, made once and used by
// every Conv2DWinograd call: 36 K×C matrices, 4× the memory of the weights.
type WinogradFilter struct {
	K, C int
	u    []float32 // u[ξ·K·C + k·C + c]
}

// NewWinogradFilter transforms the weights w (K×C×3×3, PyTorch layout).
func NewWinogradFilter(w []float32, k, c int) *WinogradFilter {
	f := &WinogradFilter{K: k, C: c, u: make([]float32, winoXi*k*c)}
	wt := winoWeights{c: c, w: w}
	winoParallel(k, max(1, 4096/max(c, 1)), func(lo, hi int) { wt.transform(f.u, 0, k, 0, c, lo, hi) })
	return f
}

// NewWinogradFilterF16 is NewWinogradFilter for weights held as IEEE half bits, widened first.
func NewWinogradFilterF16(w []uint16, k, c int) *WinogradFilter {
	f := &WinogradFilter{K: k, C: c, u: make([]float32, winoXi*k*c)}
	wt := winoWeights{c: c, h: w}
	winoParallel(k, max(1, 4096/max(c, 1)), func(lo, hi int) { wt.transform(f.u, 0, k, 0, c, lo, hi) })
	return f
}

// Conv2DWinogradW is Conv2DWinograd with the weights w (K×C×3×3) transformed during the call.
// With few tiles (at most winoFusedTiles, 128: the UNet's 32×32 and 16×16 layers) each GEMM
// worker transforms the filters of a block of 12 output channels by 320 input channels into a
// buffer that stays in its cache and multiplies them at once (fusedGemm); with more, the
// transform is made for all workers: in one piece when it is at most 40 MB (36·K·C floats), else
// in blocks of output and input channels as the GEMMs need them (each filter is transformed once
// per block of up to 512 tiles). Nothing is kept between calls beyond pooled workspace.
func Conv2DWinogradW(p ConvParams, x, w, bias, y []float32) {
	winoRun(p, x, winoWeights{c: p.C, w: w}, bias, y)
}

// Conv2DWinogradF16 is Conv2DWinogradW with the weights held as IEEE half bits.
func Conv2DWinogradF16(p ConvParams, x []float32, w []uint16, bias, y []float32) {
	winoRun(p, x, winoWeights{c: p.C, h: w}, bias, y)
}

// Conv2DWinogradBF16 is Conv2DWinogradW with the weights held as bfloat16 bits.
func Conv2DWinogradBF16(p ConvParams, x []float32, w []uint16, bias, y []float32) {
	winoRun(p, x, winoWeights{c: p.C, h: w, bf16: true}, bias, y)
}

// winoWeights is a convolution's weights as Winograd reads them: already transformed (u, in
// WinogradFilter's layout), or K×C×3×3 float32 (w), IEEE half (h) or bfloat16 (h, bf16) values
// transformed during the call.
type winoWeights struct {
	c    int // input channels
	u    []float32
	w    []float32
	h    []uint16
	bf16 bool
}

// transform writes the transforms of the filters of output channels k0+[lo, hi) and input
// channels [c0, c0+cn) to u[ξ·kn·cn + (k−k0)·cn + c−c0], 64 filters at a time (half-precision
// weights widened first).
func (wt *winoWeights) transform(u []float32, k0, kn, c0, cn, lo, hi int) {
	const cb = 64
	var wide [9 * cb]float32
	if len(u) < winoXi*kn*cn { // a length check, not a read of u: other workers write it meanwhile
		panic("kernels: Winograd filter transform: short destination")
	}
	for kk := lo; kk < hi; kk++ {
		for i0 := 0; i0 < cn; i0 += cb {
			n := min(cb, cn-i0)
			o := ((k0+kk)*wt.c + c0 + i0) * 9
			var g []float32
			switch {
			case wt.w != nil:
				g = wt.w[o : o+9*n]
			case wt.bf16:
				g = wide[:9*n]
				BF16ToF32(g, wt.h[o:o+9*n])
			default:
				g = wide[:9*n]
				F16ToF32(g, wt.h[o:o+9*n])
			}
			winoFilters(u[kk*cn+i0:], kn*cn, g, n)
		}
	}
}

// winoFiltersGo is the plain-Go filter transform of nt consecutive 3×3 filters w (9 floats
// each): U of filter t goes to dst[ξ·ld + t].
func winoFiltersGo(dst []float32, ld int, w []float32, nt int) {
	for t := 0; t < nt; t++ {
		u := winoFilterTransform((*[9]float32)(w[9*t : 9*t+9]))
		for xi, v := range u {
			dst[xi*ld+t] = v
		}
	}
}

// winoTapsGo is the plain-Go twin of winoTaps16: n groups of 16 consecutive 3×3 filters
// transposed tap-major, dst[144·g + 16·tap + t] = src[144·g + 9·t + tap].
func winoTapsGo(dst, src []float32, n int) {
	for g := 0; g < n; g++ {
		for t := 0; t < 16; t++ {
			for tap := 0; tap < 9; tap++ {
				dst[144*g+16*tap+t] = src[144*g+9*t+tap]
			}
		}
	}
}

// winoFilterTransform returns U = G·g·Gᵀ of the 3×3 filter g (row-major), U[6i + j], in
// float32 straight-line code: G down each column, then along each row, the operations
// winograd_filter_amd64.s repeats in the same order.
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
// to, with the weights given as their transform f (f.K = p.K, f.C = p.C).
//
// Tiles are numbered image by image, tile row by tile row; rows of fewer than 16 tiles share one
// input strip with one unused tile between rows (the transforms then run on groups of 16 or 8
// tiles whatever the image width), whose transforms are left out of V. The tiles go in blocks of at
// most 512 whose transformed data stay within 24 MiB; for each block and block of input channels
// the workers share the input transform (by channel), then for each block of output channels the
// filter transform (by output channel, unless the filters came transformed) and the 36 GEMMs
// M_ξ += U_ξ·V_ξ (by ξ) — or, fused (Conv2DWinogradW with few tiles), the packing of V_ξ into B
// panels (by ξ; across narrow rows the input transform writes them itself) and each worker's
// filter transforms and GEMMs for 12 output channels at a time —
// and at the end of the block the output transform (by output channel, bias added), all taking
// work from a counter.
func Conv2DWinograd(p ConvParams, x []float32, f *WinogradFilter, bias, y []float32) {
	if f.K != p.K || f.C != p.C {
		panic("kernels: Conv2DWinograd: filter does not fit the convolution")
	}
	winoRun(p, x, winoWeights{c: p.C, u: f.u}, bias, y)
}

func winoRun(p ConvParams, x []float32, wt winoWeights, bias, y []float32) {
	if !WinogradApplies(p) {
		panic("kernels: Conv2DWinograd: not a 3×3 stride-1 convolution")
	}
	oh, ow := p.OutSize()
	if p.N <= 0 || p.K <= 0 {
		return
	}
	_ = x[p.N*p.C*p.H*p.W-1]
	ldy := p.outPlane()
	_ = y[(p.N*p.K-1)*ldy+oh*ow-1]
	if wt.u != nil {
		_ = wt.u[winoXi*p.K*p.C-1]
	} else if wt.w != nil {
		_ = wt.w[p.K*p.C*9-1]
	} else {
		_ = wt.h[p.K*p.C*9-1]
	}
	if p.C <= 0 { // no input: the bias
		for n := 0; n < p.N; n++ {
			for k := 0; k < p.K; k++ {
				out := y[(n*p.K+k)*ldy : (n*p.K+k)*ldy+oh*ow]
				b := float32(0)
				if bias != nil {
					b = bias[k]
				}
				for i := range out {
					out[i] = b
				}
			}
		}
		return
	}
	j := &winoJob{p: p, x: x, wt: wt, bias: bias, y: y, ldy: ldy, oh: oh, ow: ow}
	j.th, j.tw = (oh+winoOut-1)/winoOut, (ow+winoOut-1)/winoOut
	j.gap = j.tw < winoRowTiles
	tiles := p.N * j.th * j.tw
	j.cb, j.kb = p.C, p.K
	j.whole = wt.u != nil || winoXi*p.K*p.C <= winoFilterWhole
	j.fused = wt.u == nil && tiles <= winoFusedTiles
	j.direct = j.fused && j.gap
	if j.fused {
		j.whole = false
		j.cb = min(p.C, winoFusedChan)
	} else if !j.whole {
		j.cb = min(p.C, winoChanBlock)
		j.kb = max(12, min(p.K, winoFilterBlock/(winoXi*j.cb)/12*12))
	}
	tb := winoBlockMax / (winoXi * (j.cb + p.K)) / 16 * 16
	j.tb = max(16, min(tb, winoTilesMax, (tiles+15)/16*16))

	v, m := winoMem.get(winoXi*j.cb*j.tb), winoMem.get(winoXi*p.K*j.tb)
	j.v, j.m = v, m
	var u []float32
	switch {
	case j.fused:
		// V_ξ packed into the GEMM's B panels once per channel block, read by every worker.
		j.ldp = (j.tb + sgemmNR - 1) / sgemmNR * sgemmNR * j.cb
		u = winoMem.get(winoXi * j.ldp)
		j.vp = u
	case wt.u != nil:
		j.u = wt.u
	case j.whole:
		u = winoMem.get(winoXi * p.K * p.C)
		j.u = u
		j.k0, j.kn, j.c0, j.cn = 0, p.K, 0, p.C
		winoParallel(p.K, max(1, 4096/p.C), j.filter)
	default:
		u = winoMem.get(winoXi * j.kb * j.cb)
	}
	for t0 := 0; t0 < tiles; t0 += j.tb {
		j.t0, j.nb = t0, min(j.tb, tiles-t0)
		for c0 := 0; c0 < p.C; c0 += j.cb {
			j.c0, j.cn = c0, min(j.cb, p.C-c0)
			winoParallel(j.cn, max(1, j.cn/(8*workers())), j.input)
			if j.fused {
				if !j.direct {
					winoParallel(winoXi, 1, j.packV)
				}
				winoParallel((p.K+winoFusedRows-1)/winoFusedRows, 1, j.fusedGemm)
				continue
			}
			for k0 := 0; k0 < p.K; k0 += j.kb {
				j.k0, j.kn = k0, min(j.kb, p.K-k0)
				if !j.whole {
					j.u = u[:winoXi*j.kn*j.cn]
					winoParallel(j.kn, max(1, 4096/j.cn), j.filter)
				}
				winoParallel(winoXi, 1, j.gemm)
			}
		}
		winoParallel(p.K, max(1, p.K/(8*workers())), j.output)
	}
	winoMem.put(v)
	winoMem.put(m)
	if u != nil {
		winoMem.put(u)
	}
}

// winoJob is one Conv2DWinograd call. The current tile block is [t0, t0+nb); the current input
// channels [c0, c0+cn), output channels [k0, k0+kn). V is v[ξ·cb·tb + (c−c0)·tb + t], M is
// m[ξ·K·tb + k·tb + t] (t counted from t0); the transformed filters are u[ξ·K·C + k·C + c] when
// whole, else the current block's u[ξ·kn·cn + (k−k0)·cn + c−c0].
type winoJob struct {
	p              ConvParams
	x, y, bias     []float32
	ldy            int // distance between y's planes (p.outPlane())
	wt             winoWeights
	whole          bool
	fused          bool // filters transformed by the GEMM workers (fusedGemm)
	direct         bool // fused across narrow rows: input writes V_ξ's B panels (putPanels), no packV
	vp             []float32
	ldp            int // floats per ξ of vp: V_ξ's B panels
	oh, ow, th, tw int
	gap            bool // narrow rows: runs span rows, an unused tile between rows in the input strip
	cb, kb         int
	tb, t0, nb     int
	c0, cn, k0, kn int
	u, v, m        []float32
}

// filter transforms the filters of output channels k0+[lo, hi), input channels [c0, c0+cn).
func (j *winoJob) filter(lo, hi int) { j.wt.transform(j.u, j.k0, j.kn, j.c0, j.cn, lo, hi) }

// runs calls fn for runs [g, g+cnt) of the block's tiles that share one strip: a tile row's
// tiles, or (narrow rows) up to 64 tiles across rows.
func (j *winoJob) runs(fn func(g, cnt int)) {
	end := j.t0 + j.nb
	for g := j.t0; g < end; {
		e := min(end, g+64)
		if !j.gap {
			e = min(end, (g/j.tw+1)*j.tw)
		}
		fn(g, e-g)
		g = e
	}
}

// rows calls fn for each tile row met by the tiles [g0, g0+cnt): image n, tile row ty, its
// tiles [a, b), the first of them tile cc of the run and tile gc of the run's input strip, where
// each row but the first is preceded by an unused tile (so that the rows' 6×6 patches, which
// overlap their neighbours' by 2 columns, do not overlap across rows).
func (j *winoJob) rows(g0, cnt int, fn func(n, ty, a, b, cc, gc int)) {
	for g, seg := g0, 0; g < g0+cnt; seg++ {
		row := g / j.tw
		e := min(g0+cnt, (row+1)*j.tw)
		fn(row/j.th, row%j.th, g-row*j.tw, e-row*j.tw, g-g0, g-g0+seg)
		g = e
	}
}

// winoLanes is the AVX2 transforms' tile order within each whole group of 8 tiles of a run:
// tile g+i of the run is in column g+winoLanes[i] of V and M.
var winoLanes = [8]int{0, 4, 1, 5, 2, 6, 3, 7}

// winoCol is the column of V and M (from the run's start) holding tile t of a run of n tiles.
func winoCol(t, n int) int {
	if useAVX2 && !useAVX512 && t < n/8*8 {
		return t&^7 + winoLanes[t&7]
	}
	return t
}

// input transforms input channels c0+[lo, hi) of the block's tiles into V. Runs across narrow
// rows are transformed with an unused tile between rows into a scratch V, whose used tiles are
// then copied to V.
func (j *winoJob) input(lo, hi int) {
	sp := winoStrips.Get().(*[]float32)
	p := &j.p
	ldv := j.cb * j.tb
	var gv []float32 // the scratch V of a run across rows: 36 × ng
	j.runs(func(g0, cnt int) {
		ng := cnt // tiles in the strip
		if j.gap {
			ng += (g0+cnt-1)/j.tw - g0/j.tw
		}
		ldr := (winoOut*ng + 2 + 15) &^ 15
		if cap(*sp) < winoIn*ldr+winoXi*ng {
			*sp = make([]float32, winoIn*ldr+winoXi*ng)
		}
		strip := (*sp)[:winoIn*ldr]
		var from [64]int32 // from[d]: the scratch column copied to V's column d
		if j.gap {
			gv = (*sp)[winoIn*ldr : winoIn*ldr+winoXi*ng]
			j.rows(g0, cnt, func(_, _, a, b, cc, gc int) {
				for i := 0; i < b-a; i++ {
					from[winoCol(cc+i, cnt)] = int32(winoCol(gc+i, ng))
				}
			})
		}
		// A run within one tile row reads the groups of tiles the transform kernel takes at a
		// time (16, or 8 with AVX2 only) whose patches lie inside the image in place: only the
		// columns of the groups at its ends, and the rows of the image's first and last tile
		// rows, go through the strip, padded.
		var n, iy0, ix0, inLo, inHi int // in place: groups [inLo, inHi) of the run
		if !j.gap && useAVX2 && winoInPlace {
			row := g0 / j.tw
			n, iy0, ix0 = row/j.th, row%j.th*winoOut-p.PadH, (g0-row*j.tw)*winoOut-p.PadW
			if iy0 >= 0 && iy0+winoIn <= p.H {
				g := 8
				if useAVX512 {
					g = 16
				}
				// Group k reads columns [ix0+4gk, ix0+4g(k+1)+4) (winoInput's bounds).
				inLo = (max(0, -ix0) + winoOut*g - 1) / (winoOut * g)
				inHi = min(cnt/g, (p.W-ix0-winoOut)/(winoOut*g))
				inLo, inHi = inLo*g, inHi*g // in tiles
			}
		}
		for c := lo; c < hi; c++ {
			dst := j.v[c*j.tb+g0-j.t0:]
			if inLo < inHi {
				img := j.x[(n*p.C+j.c0+c)*p.H*p.W : (n*p.C+j.c0+c+1)*p.H*p.W]
				if inLo > 0 {
					winoStrip(strip, ldr, img, p.H, p.W, iy0, ix0, 0, winoOut*inLo+2)
					winoInput(dst, ldv, strip, ldr, inLo)
				}
				winoInput(dst[inLo:], ldv, img[iy0*p.W+ix0+winoOut*inLo:], p.W, inHi-inLo)
				if inHi < cnt {
					winoStrip(strip, ldr, img, p.H, p.W, iy0, ix0+winoOut*inHi, 0, winoOut*(cnt-inHi)+2)
					winoInput(dst[inHi:], ldv, strip, ldr, cnt-inHi)
				}
				continue
			}
			j.rows(g0, cnt, func(n, ty, a, b, _, gc int) {
				img := j.x[(n*p.C+j.c0+c)*p.H*p.W : (n*p.C+j.c0+c+1)*p.H*p.W]
				winoStrip(strip, ldr, img, p.H, p.W, ty*winoOut-p.PadH, a*winoOut-p.PadW, winoOut*gc, winoOut*(b-a)+2)
			})
			if !j.gap {
				winoInput(dst, ldv, strip, ldr, cnt)
				continue
			}
			winoInput(gv, ng, strip, ldr, ng)
			if j.direct {
				j.putPanels(c, g0-j.t0, cnt, gv, ng, from[:cnt])
				continue
			}
			for xi := 0; xi < winoXi; xi++ {
				row, src := dst[xi*ldv:xi*ldv+cnt], gv[xi*ng:xi*ng+ng]
				for d, f := range from[:cnt] {
					row[d] = src[f]
				}
			}
		}
	})
	winoStrips.Put(sp)
}

// winoStrip copies the 6 rows × width columns of the image img (h×w) from row iy0, column ix0
// on (either may be outside the image: zeros there) to the strip (row stride ldr) from column col
// on.
func winoStrip(strip []float32, ldr int, img []float32, h, w, iy0, ix0, col, width int) {
	lo, hi := max(0, -ix0), min(width, w-ix0) // valid columns
	for i := 0; i < winoIn; i++ {
		row := strip[i*ldr+col : i*ldr+col+width]
		iy := iy0 + i
		if iy < 0 || iy >= h || lo >= hi {
			clear(row)
			continue
		}
		clear(row[:lo])
		copy(row[lo:hi], img[iy*w+ix0+lo:iy*w+ix0+hi])
		clear(row[hi:])
	}
}

// putPanels writes the transformed tiles of input channel c (block-relative) of a run across
// narrow rows, gv and from as in input, straight into the B panels of V_ξ (vp, packV's layout)
// at block columns [b0, b0+cnt) (b0 a multiple of sgemmNR), zeroing the last panel's unused
// columns.
func (j *winoJob) putPanels(c, b0, cnt int, gv []float32, ng int, from []int32) {
	pan := sgemmNR * j.cn // floats per panel
	for xi := 0; xi < winoXi; xi++ {
		src := gv[xi*ng : xi*ng+ng]
		vp := j.vp[xi*j.ldp+b0/sgemmNR*pan+c*sgemmNR : (xi+1)*j.ldp]
		for p0 := 0; p0 < cnt; p0 += sgemmNR { // a panel's 16 columns at a time
			row := vp[p0/sgemmNR*pan:]
			row = row[:sgemmNR]
			for d, f := range from[p0:min(cnt, p0+sgemmNR)] {
				row[d] = src[f]
			}
		}
		if b0+cnt == j.nb && j.nb%sgemmNR != 0 {
			o := (cnt-1)/sgemmNR*pan + cnt%sgemmNR
			clear(vp[o : o+sgemmNR-cnt%sgemmNR])
		}
	}
}

// gemm computes M_ξ (+)= U_ξ·V_ξ for ξ in [lo, hi) on the current channel blocks, each on the
// calling goroutine (the first input-channel block sets M, the others add to it).
func (j *winoJob) gemm(lo, hi int) {
	p := &j.p
	beta := float32(1)
	if j.c0 == 0 {
		beta = 0
	}
	for xi := lo; xi < hi; xi++ {
		var a sgemmSrc
		if j.whole {
			o := xi*p.K*p.C + j.k0*p.C + j.c0
			a = sgemmSrc{data: j.u[o : o+(j.kn-1)*p.C+j.cn], ld: p.C}
		} else {
			a = sgemmSrc{data: j.u[xi*j.kn*j.cn : (xi+1)*j.kn*j.cn], ld: j.cn}
		}
		b := sgemmSrc{data: j.v[xi*j.cb*j.tb : xi*j.cb*j.tb+j.cn*j.tb], ld: j.tb}
		c := j.m[xi*p.K*j.tb+j.k0*j.tb : xi*p.K*j.tb+(j.k0+j.kn)*j.tb]
		sgemmRunOn(1, j.kn, j.nb, j.cn, 1, &a, &b, beta, c, j.tb, 0, 0, nil, false)
	}
}

// packV packs V_ξ of the current blocks into the GEMM's B panels (vp[ξ·ldp:]), for ξ in [lo, hi).
func (j *winoJob) packV(lo, hi int) {
	for xi := lo; xi < hi; xi++ {
		b := sgemmSrc{data: j.v[xi*j.cb*j.tb : xi*j.cb*j.tb+j.cn*j.tb], ld: j.tb}
		packB(j.vp[xi*j.ldp:(xi+1)*j.ldp], nil, &b, 0, j.cn, 0, j.nb)
	}
}

// fusedGemm computes M_ξ (+)= U_ξ·V_ξ for all ξ on the output channels of the winoFusedRows-row
// panels [lo, hi) and the current blocks, transforming their filters into a buffer of its own
// just before: the transformed filters never leave the worker's cache, where transforming them
// for all workers at once wrote and read back 36·K·C floats (236 MB for 1280 channels) through
// memory on every call. The GEMMs read U_ξ in place and the shared B panels of V_ξ.
func (j *winoJob) fusedGemm(lo, hi int) {
	p := &j.p
	buf := sgemmBufPool.Get().(*sgemmBuf)
	up := winoFusedBufs.Get().(*[]float32)
	if len(*up) < winoXi*winoFusedRows*j.cb {
		*up = sgemmAligned(winoXi * winoFusedRows * winoFusedChan)
	}
	beta := float32(1)
	if j.c0 == 0 {
		beta = 0
	}
	g := sgemmJob{n: j.nb, k: j.cn, alpha: 1, avx: useAVX2, avx512: useAVX2 && useAVX512, aDirect: true, ldc: j.tb}
	for panel := lo; panel < hi; panel++ {
		k0 := panel * winoFusedRows
		kn := min(winoFusedRows, p.K-k0)
		u := (*up)[:winoXi*kn*j.cn]
		j.wt.transform(u, k0, kn, j.c0, j.cn, 0, kn)
		g.m = kn
		for xi := 0; xi < winoXi; xi++ {
			g.a = sgemmSrc{data: u[xi*kn*j.cn : (xi+1)*kn*j.cn], ld: j.cn}
			g.c = j.m[xi*p.K*j.tb+k0*j.tb : xi*p.K*j.tb+(k0+kn)*j.tb]
			g.macroDirect(buf, j.vp[xi*j.ldp:(xi+1)*j.ldp], kn, j.nb, j.cn, 0, 0, 0, beta)
		}
	}
	winoFusedBufs.Put(up)
	sgemmBufPool.Put(buf)
}

// winoFusedBufs holds the workers' transformed-filter blocks.
var winoFusedBufs = sync.Pool{New: func() any { return new([]float32) }}

// output transforms output channels [lo, hi) of the block's tiles from M into y, adding the bias.
// A run of tiles wholly inside one tile row of the output is written in place; the others go
// through a strip.
func (j *winoJob) output(lo, hi int) {
	sp := winoStrips.Get().(*[]float32)
	p := &j.p
	ldm := p.K * j.tb
	j.runs(func(g0, cnt int) {
		ldo := winoOut * cnt
		if !j.gap {
			row := g0 / j.tw
			n, ty, tx := row/j.th, row%j.th, g0%j.tw
			oy, ox := ty*winoOut, tx*winoOut
			if oy+winoOut <= j.oh && ox+ldo <= j.ow {
				for k := lo; k < hi; k++ {
					out := j.y[(n*p.K+k)*j.ldy:]
					winoOutput(out[oy*j.ow+ox:], j.ow, j.m[k*j.tb+g0-j.t0:], ldm, cnt, j.biasOf(k))
				}
				return
			}
		}
		if cap(*sp) < winoOut*ldo {
			*sp = make([]float32, winoOut*ldo)
		}
		strip := (*sp)[:winoOut*ldo]
		for k := lo; k < hi; k++ {
			winoOutput(strip, ldo, j.m[k*j.tb+g0-j.t0:], ldm, cnt, j.biasOf(k))
			j.rows(g0, cnt, func(n, ty, a, b, cc, _ int) {
				col := winoOut * cc
				out := j.y[(n*p.K+k)*j.ldy : (n*p.K+k)*j.ldy+j.oh*j.ow]
				oy, ox := ty*winoOut, a*winoOut
				rows, cols := min(winoOut, j.oh-oy), min(winoOut*(b-a), j.ow-ox)
				for r := 0; r < rows; r++ {
					copy(out[(oy+r)*j.ow+ox:(oy+r)*j.ow+ox+cols], strip[r*ldo+col:r*ldo+col+cols])
				}
			})
		}
	})
	winoStrips.Put(sp)
}

func (j *winoJob) biasOf(k int) float32 {
	if j.bias == nil {
		return 0
	}
	return j.bias[k]
}

// winoStrips holds a worker's padded input rows or output rows.
var winoStrips = sync.Pool{New: func() any { s := make([]float32, 0, 4096); return &s }}

// winoMem keeps Winograd's workspace (tens of MB) between calls. sync.Pool drops its contents
// at every other garbage collection, and the page faults of reallocating them then cost more
// than the convolution; winoMem keeps at most winoMemMax floats.
var winoMem winoArena

const winoMemMax = 24 << 20

// winoArena is a small set of free buffers.
type winoArena struct {
	mu   sync.Mutex
	free [][]float32
	held int
}

// get returns a buffer of n floats (64-byte aligned, contents undefined): the smallest free one
// that holds them, else a new one.
func (a *winoArena) get(n int) []float32 {
	a.mu.Lock()
	best := -1
	for i, b := range a.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(a.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := a.free[best]
		a.free = append(a.free[:best], a.free[best+1:]...)
		a.held -= cap(b)
		a.mu.Unlock()
		return b[:n]
	}
	a.mu.Unlock()
	return sgemmAligned(n)
}

// put returns b to the free set, dropping the oldest buffers beyond winoMemMax floats.
func (a *winoArena) put(b []float32) {
	a.mu.Lock()
	a.free = append(a.free, b[:cap(b)])
	a.held += cap(b)
	for a.held > winoMemMax && len(a.free) > 0 {
		a.held -= cap(a.free[0])
		a.free = a.free[1:]
	}
	a.mu.Unlock()
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

// WinogradMinTiles is the fewest 4×4 output tiles (N·⌈OH/4⌉·⌈OW/4⌉) from which Conv2DWinogradW
// (filters transformed during the call) beats Conv2D on this CPU's kernels: 16 with AVX-512, 8
// with AVX2 only. Measured with the filters transformed inside the GEMM workers (fused) on an AMD
// EPYC Zen 5 (2 cores, ms per call, Winograd against direct): with AVX-512, 1×1280×16×16→1280
// (16 tiles) 20.5 against 23.5, 1×2560×16×16→1280 41 against 46, 1×640×16×16→1280 9.6 against
// 11.2, but 2×1280×8×8→1280 (8 tiles) 19.5 against 13.4; with AVX2 only, 16 tiles 18.7 against
// 39.9 and 8 tiles 17.1 against 25.5 (2×2560×8×8→1280: 35.9 against 43.4).
func WinogradMinTiles() int {
	if useAVX2 && !useAVX512 {
		return 8
	}
	return 16
}
