package kernels

import (
	"math"
	"math/rand"
	"testing"
)

// f16Ref decodes a half-precision value with float64 arithmetic, straight from the definition.
func f16Ref(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	switch e {
	case 0:
		return sign * m * math.Pow(2, -24)
	case 31:
		if m == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * (1 + m/1024) * math.Pow(2, float64(e-15))
}

func TestF16ToF32AllValues(t *testing.T) {
	src := make([]uint16, 1<<16+3)
	for i := range src {
		src[i] = uint16(i)
	}
	for _, avx := range []bool{true, false} {
		for _, n := range []int{40, 31, 8, 7} { // the 32-value loop's 8-value tail, the Go tail
			short, whole := make([]float32, n), make([]float32, n)
			withAVX2(avx, func() { F16ToF32(short, src[:n]) })
			withAVX2(false, func() { F16ToF32(whole, src[:n]) })
			for i := range short {
				if math.Float32bits(short[i]) != math.Float32bits(whole[i]) {
					t.Fatalf("avx=%v, %d values: %#04x → %g, plain Go %g", avx, n, src[i], short[i], whole[i])
				}
			}
		}
		dst := make([]float32, len(src))
		withAVX2(avx, func() { F16ToF32(dst, src) })
		for i, h := range src {
			want, got := f16Ref(h), dst[i]
			if math.IsNaN(want) {
				// NaN: the payload is kept in the top mantissa bits, and the sign too.
				b := math.Float32bits(got)
				if got == got || b>>31 != uint32(h>>15) || (b>>13)&0x3ff != uint32(h&0x3ff)|0x200&(b>>13) {
					t.Fatalf("avx=%v: %#04x → %#08x, want a NaN with its payload", avx, h, b)
				}
				continue
			}
			if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
				t.Fatalf("avx=%v: %#04x → %g, want %g", avx, h, got, want)
			}
		}
	}
}

func TestBF16ToF32(t *testing.T) {
	r := rand.New(rand.NewSource(15))
	src := make([]uint16, 1001)
	for i := range src {
		src[i] = uint16(r.Uint32())
	}
	for _, n := range []int{len(src), 576, 40, 31, 8, 7} { // the 32-value loop, its 8-value tail, the Go tail
		for _, avx := range []bool{true, false} {
			dst := make([]float32, n+1)
			dst[n] = -1
			withAVX2(avx, func() { BF16ToF32(dst[:n], src[:n]) })
			for i, h := range src[:n] {
				if math.Float32bits(dst[i]) != uint32(h)<<16 {
					t.Fatalf("avx=%v n=%d: %#04x → %#08x", avx, n, h, math.Float32bits(dst[i]))
				}
			}
			if dst[n] != -1 {
				t.Fatalf("avx=%v n=%d: wrote past the end", avx, n)
			}
		}
	}
}
