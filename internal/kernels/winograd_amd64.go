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

// winoInput runs the input transform (winoInputGo's contract): the AVX-512 kernel on whole groups
// of 16 tiles when available, plain Go on the rest.
func winoInput(dst []float32, ld int, strip []float32, ldr, nt int) {
	if n16 := nt / 16; n16 > 0 && useAVX2 && useAVX512 {
		_ = dst[35*ld+16*n16-1]
		_ = strip[5*ldr+64*n16+3]
		var scratch [winoXi * 16]float32
		winoInput16x(&dst[0], ld, &strip[0], ldr, n16, &scratch[0])
		dst, strip, nt = dst[16*n16:], strip[64*n16:], nt-16*n16
	}
	if nt > 0 {
		winoInputGo(dst, ld, strip, ldr, nt)
	}
}

// winoOutput runs the output transform (winoOutputGo's contract) likewise.
func winoOutput(dst []float32, ldo int, m []float32, ld, nt int, bias float32) {
	if n16 := nt / 16; n16 > 0 && useAVX2 && useAVX512 {
		_ = dst[3*ldo+64*n16-1]
		_ = m[35*ld+16*n16-1]
		var scratch [40 * 16]float32
		winoOutput16x(unsafe.SliceData(dst), ldo, unsafe.SliceData(m), ld, n16, bias, &scratch[0])
		dst, m, nt = dst[64*n16:], m[16*n16:], nt-16*n16
	}
	if nt > 0 {
		winoOutputGo(dst, ldo, m, ld, nt, bias)
	}
}
