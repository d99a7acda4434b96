//go:build amd64

package kernels

import "unsafe"

// winoInput16x is the AVX-512 input transform of 16·n16 tiles (winoInputGo's contract, 16 tiles
// per iteration); scratch holds 36·16 floats. The strip rows must hold 64·n16 + 4 floats.
//
//go:noescape
func winoInput16x(dst *float32, ld int, strip *float32, ldr int, n16 int, scratch *float32)

// winoOutput16x is the AVX-512 output transform of 16·n16 tiles (winoOutputGo's contract);
// scratch holds 40·16 floats.
//
//go:noescape
func winoOutput16x(dst *float32, ldo int, m *float32, ld int, n16 int, bias float32, scratch *float32)

// winoInput8x and winoOutput8x are the AVX2/FMA transforms, 8 tiles per iteration, with the
// tiles of each group of 8 in the lane order 0, 2, 4, 6, 1, 3, 5, 7 in V and M (see
// winograd_amd64.s); scratch holds 36·8 (input) or 40·8 (output) floats.
//
//go:noescape
func winoInput8x(dst *float32, ld int, strip *float32, ldr int, n8 int, scratch *float32)

//go:noescape
func winoOutput8x(dst *float32, ldo int, m *float32, ld int, n8 int, bias float32, scratch *float32)

// winoInput runs the input transform (winoInputGo's contract): the AVX-512 kernel on whole groups
// of 16 tiles, or the AVX2 one on groups of 8, plain Go on the rest.
func winoInput(dst []float32, ld int, strip []float32, ldr, nt int) {
	if n16 := nt / 16; n16 > 0 && useAVX2 && useAVX512 {
		_ = dst[35*ld+16*n16-1]
		_ = strip[5*ldr+64*n16+3]
		var scratch [winoXi * 16]float32
		winoInput16x(&dst[0], ld, &strip[0], ldr, n16, &scratch[0])
		dst, strip, nt = dst[16*n16:], strip[64*n16:], nt-16*n16
	} else if n8 := nt / 8; n8 > 0 && useAVX2 && !useAVX512 {
		_ = dst[35*ld+8*n8-1]
		_ = strip[5*ldr+32*n8+3]
		var scratch [winoXi * 8]float32
		winoInput8x(&dst[0], ld, &strip[0], ldr, n8, &scratch[0])
		dst, strip, nt = dst[8*n8:], strip[32*n8:], nt-8*n8
	}
	if nt > 0 {
		winoInputGo(dst, ld, strip, ldr, nt)
	}
}

// winoOutput runs the output transform (winoOutputGo's contract) likewise (M in the AVX2
// kernels' lane order where they ran).
func winoOutput(dst []float32, ldo int, m []float32, ld, nt int, bias float32) {
	if n16 := nt / 16; n16 > 0 && useAVX2 && useAVX512 {
		_ = dst[3*ldo+64*n16-1]
		_ = m[35*ld+16*n16-1]
		var scratch [40 * 16]float32
		winoOutput16x(unsafe.SliceData(dst), ldo, unsafe.SliceData(m), ld, n16, bias, &scratch[0])
		dst, m, nt = dst[64*n16:], m[16*n16:], nt-16*n16
	} else if n8 := nt / 8; n8 > 0 && useAVX2 && !useAVX512 {
		_ = dst[3*ldo+32*n8-1]
		_ = m[35*ld+8*n8-1]
		var scratch [40 * 8]float32
		winoOutput8x(unsafe.SliceData(dst), ldo, unsafe.SliceData(m), ld, n8, bias, &scratch[0])
		dst, m, nt = dst[32*n8:], m[8*n8:], nt-8*n8
	}
	if nt > 0 {
		winoOutputGo(dst, ldo, m, ld, nt, bias)
	}
}

// winoFilter16x and winoFilter8x are the AVX-512 and AVX2 filter transforms of 16·n or 8·n
// consecutive 3×3 filters, U of filter t going to u[ξ·ld + t]; w holds the filters tap-major in
// groups of 16 (w[144·g + 16·tap + t]: winoFilters transposes them); scratch holds 18·16 or 18·8
// floats.
//
//go:noescape
func winoFilter16x(u *float32, ld int, w *float32, n int, scratch *float32)

//go:noescape
func winoFilter8x(u *float32, ld int, w *float32, n int, scratch *float32)

// winoTaps16 transposes n groups of 16 consecutive 3×3 filters tap-major (winoTapsGo), with
// AVX-512.
//
//go:noescape
func winoTaps16(dst, src *float32, n int)

// winoFilters transforms nt filters (winoFiltersGo's contract): whole groups of 16 with the
// AVX-512 or the AVX2 kernel, plain Go on the rest. The groups are first transposed tap-major, a
// few at a time, by winoTaps16 (AVX-512) or the SGEMM's transposer: gathering the taps in the
// kernels (VGATHERDPS) took most of the transform's time, which on the Zen 5 fell from 3.6 to 3.0
// ns a filter (AVX-512) with the weights in cache and from 7.5 to 4.2 from memory with the SGEMM's
// transposer, and with winoTaps16 (which also prefetches four groups ahead) from 4.2–6.6 to
// 3.8–5.1 in cache and 7.0–10.5 to 5.4–6.5 from memory (alternated runs of a slow hour).
func winoFilters(dst []float32, ld int, w []float32, nt int) {
	const groups = 4
	n16 := nt / 16
	if n16 > 0 && useAVX2 {
		_ = dst[35*ld+16*n16-1]
		_ = w[9*16*n16-1]
		var scratch [18 * 16]float32
		var taps [groups * 9 * 16]float32
		for g0 := 0; g0 < n16; g0 += groups {
			ng := min(groups, n16-g0)
			if useAVX512 {
				winoTaps16(&taps[0], &w[g0*144], ng)
				winoFilter16x(&dst[16*g0], ld, &taps[0], ng, &scratch[0])
				continue
			}
			for g := 0; g < ng; g++ {
				packBT16(taps[g*144:(g+1)*144], w[(g0+g)*144:(g0+g+1)*144], 9, 9)
			}
			winoFilter8x(&dst[16*g0], ld, &taps[0], 2*ng, &scratch[0])
		}
		dst, w, nt = dst[16*n16:], w[9*16*n16:], nt-16*n16
	}
	if nt > 0 {
		winoFiltersGo(dst, ld, w, nt)
	}
}
