package kernels

import "math"

// F16ToF32 widens IEEE 754 half-precision values (as raw bits) to float32, exactly: subnormals,
// infinities and NaNs (sign and payload kept; the hardware path also sets the quiet bit of a
// signalling NaN) included. On amd64 it uses F16C's VCVTPH2PS when the CPU reports F16C (together
// with AVX2, as on every CPU with AVX2 we know of).
func F16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	if useAVX2 && f16HasF16C && len(src) >= 8 {
		n := len(src) &^ 7
		f16ToF32F16C(&dst[0], &src[0], n)
		dst, src = dst[n:], src[n:]
	}
	for i, h := range src {
		dst[i] = f16ToF32Go(h)
	}
}

// BF16ToF32 widens bfloat16 values (the top 16 bits of a float32) to float32, exactly.
func BF16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	if useAVX2 && len(src) >= 8 {
		n := len(src) &^ 7
		f16BF16ToF32AVX2(&dst[0], &src[0], n)
		dst, src = dst[n:], src[n:]
	}
	for i, h := range src {
		dst[i] = math.Float32frombits(uint32(h) << 16)
	}
}

// f16ToF32Go converts one half-precision value.
func f16ToF32Go(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN: keep the payload, quiet bit position as float32
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: value = man·2^-24; normalise the mantissa.
	e := uint32(127 - 15 + 1)
	for man&0x400 == 0 {
		man <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
}
