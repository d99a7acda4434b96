package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"
	"unsafe"
)

// amxConvCases are direct AMX convolutions: 3×3 and 1×1, one or several 32-channel blocks, an
// odd number of 16-pixel tiles (computed twice), several images to a band, and (band) images
// cut into bands of rows.
var amxConvCases = []struct {
	p    ConvParams
	band int // amxConvBandMax for the case (0: unchanged)
}{
	{ConvParams{N: 1, C: 32, H: 3, W: 16, K: 32, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}, 0},
	{ConvParams{N: 2, C: 64, H: 4, W: 32, K: 64, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}, 0},
	{ConvParams{N: 2, C: 96, H: 2, W: 16, K: 32, KH: 1, KW: 1, StrideH: 1, StrideW: 1}, 0},
	{ConvParams{N: 2, C: 32, H: 7, W: 16, K: 64, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}, 16 * 18 * 4 * 4},     // bands of 2 rows
	{ConvParams{N: 3, C: 32, H: 2, W: 16, K: 32, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}, 2 * 16 * 4 * 18 * 4}, // 2 images a band
	{ConvParams{N: 1, C: 32, H: 5, W: 32, K: 32, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadW: 1}, 0},                            // rows not padded
}

// amxConvRun runs amxConvDirect on kern for case c on random inputs, returning the output, the
// plain-Go twin's and float64's on the bf16-rounded inputs.
func amxConvRun(t *testing.T, r *rand.Rand, kern amxKernelFunc, p ConvParams, band int) (got, twin []float32, ref []float64) {
	t.Helper()
	if band > 0 {
		old := amxConvBandMax
		amxConvBandMax = band
		defer func() { amxConvBandMax = old }()
	}
	if !amxConvApplies(p) {
		t.Fatalf("%+v: the direct AMX convolution does not apply", p)
	}
	oh, ow := p.OutSize()
	taps := p.KH * p.KW
	x, wf, bias := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*taps), sgemmRandSlice(r, p.K)
	wh, wr := bf16Rounded(wf)
	_, xr := bf16Rounded(x)
	a := make([]uint32, p.K*p.C*taps/2)
	amxTapPairs(a, wh, p.K, p.C, taps)
	back := make([]uint16, len(wh))
	amxTapBits(back, a, p.K, p.C, taps)
	if !slicesEqual(back, wh) {
		t.Fatalf("%+v: amxTapBits does not invert amxTapPairs", p)
	}
	got, twin = make([]float32, p.N*p.K*oh*ow), make([]float32, p.N*p.K*oh*ow)
	for i := range got {
		got[i] = float32(math.NaN())
	}
	amxConvDirect(kern, p, x, a, bias, got)
	amxConvGeneric(p, x, a, bias, twin)
	r32 := make([]float32, len(got))
	conv2DGeneric(p, xr, wr, bias, r32) // float32 sums: compared at float32's rounding only
	ref = make([]float64, len(r32))
	for i, v := range r32 {
		ref[i] = float64(v)
	}
	return got, twin, ref
}

// amxConvCasesRun runs amxConvCases on kern, failing t unless each equals the twin bit for bit,
// and returns the largest error against the convolution of the rounded inputs.
func amxConvCasesRun(t *testing.T, r *rand.Rand, kern amxKernelFunc) float64 {
	worst := 0.0
	for _, c := range amxConvCases {
		got, twin, ref := amxConvRun(t, r, kern, c.p, c.band)
		amxSameBits(t, fmt.Sprintf("%+v (band %d)", c.p, c.band), got, twin)
		worst = math.Max(worst, amxRel64(got, ref))
	}
	return worst
}

// TestAMXConvSim runs the direct AMX convolution with the simulated kernel (every machine): bit
// for bit the plain-Go twin, and the convolution of the rounded inputs within float32 rounding.
func TestAMXConvSim(t *testing.T) {
	worst := amxConvCasesRun(t, rand.New(rand.NewSource(31)), amxKernelSim)
	t.Logf("simulated direct AMX convolution: equal to the twin bit for bit; largest error relative to the largest |y| of the float32 convolution of the rounded inputs %.3g (limit 4e-6)", worst)
	if !(worst <= 4e-6) {
		t.Errorf("error %.3g exceeds 4e-6", worst)
	}
}

// TestAMXConvSelfTest runs the direct convolution's self-test on the simulated kernel (it must
// pass) and on a kernel one ulp off (it must fail).
func TestAMXConvSelfTest(t *testing.T) {
	if err := amxConvSelfTest(amxKernelSim); err != nil {
		t.Fatalf("self-test on the simulated kernel: %v", err)
	}
	off := func(calls []amxCall) {
		amxKernelSim(calls)
		c := calls[len(calls)-1]
		v := (*float32)(unsafe.Add(c.c1, 4*(3*c.ldc+5)))
		*v = math.Nextafter32(*v, float32(math.Inf(1)))
	}
	err := amxConvSelfTest(off)
	if err == nil || !strings.Contains(err.Error(), "plain Go") {
		t.Fatalf("a kernel one ulp off: self-test error %v", err)
	}
	t.Logf("a kernel one ulp off: %v", err)
}

// amxSameBits fails t unless got equals twin bit for bit.
func amxSameBits(t *testing.T, what string, got, twin []float32) {
	t.Helper()
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(twin[i]) {
			t.Fatalf("%s: y[%d] = %g, twin %g", what, i, got[i], twin[i])
		}
	}
}

// amxRel64 is the largest |got−ref| relative to the largest |ref|.
func amxRel64(got []float32, ref []float64) float64 {
	var d, m float64
	for i, v := range ref {
		d = math.Max(d, math.Abs(float64(got[i])-v))
		m = math.Max(m, math.Abs(v))
	}
	return d / math.Max(m, 1e-30)
}

// TestAMXConvDirect runs the direct AMX convolution on AMX hardware, on the test cases and on
// UNet-sized ones through Conv2DBF16 and Conv2DBF16Packed, on 8 goroutines at once for the
// small ones: bit for bit the plain-Go twin.
func TestAMXConvDirect(t *testing.T) {
	amxNeedsCPU(t)
	if !amxOn() {
		t.Skip("AMX is used only with the AVX-512 path (off here, e.g. GODEBUG=cpu.avx512f=off)")
	}
	r := rand.New(rand.NewSource(32))
	worst := amxConvCasesRun(t, r, amxKernelAsm)
	// Larger: through the public entry points, against the twin.
	for _, p := range []ConvParams{
		{N: 2, C: 64, H: 16, W: 32, K: 96, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		{N: 1, C: 160, H: 9, W: 48, K: 64, KH: 1, KW: 1, StrideH: 1, StrideW: 1},
	} {
		oh, ow := p.OutSize()
		taps := p.KH * p.KW
		x, wf, bias := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*taps), sgemmRandSlice(r, p.K)
		wh, _ := bf16Rounded(wf)
		a := make([]uint32, len(wh)/2)
		amxTapPairs(a, wh, p.K, p.C, taps)
		twin := make([]float32, p.N*p.K*oh*ow)
		amxConvGeneric(p, x, a, bias, twin)
		pw := PackConvBF16(append([]uint16(nil), wh...), p.K, p.C, p.KH, p.KW, 1)
		if !pw.Reordered() || PackConvBF16(append([]uint16(nil), wh...), p.K, p.C, p.KH, p.KW, 2).Reordered() {
			t.Errorf("%+v: in the direct convolution's order at stride 1 %v, at stride 2 not", p, pw.Reordered())
		}
		for _, name := range []string{"Conv2DBF16", "Conv2DBF16Packed", "Conv2DBF16Packed again"} {
			got := make([]float32, len(twin))
			if name == "Conv2DBF16" {
				Conv2DBF16(p, x, wh, bias, got)
			} else {
				Conv2DBF16Packed(p, x, pw, bias, got)
			}
			amxSameBits(t, fmt.Sprintf("%s %+v", name, p), got, twin)
		}
		if !slicesEqual(pw.Bits(), wh) {
			t.Errorf("%+v: the weight in tap order does not unpack to its bits", p)
		}
		// A call the direct convolution does not serve (stride 2) reads the bits back.
		q := p
		q.StrideH, q.StrideW = 2, 2
		x8 := sgemmRandSlice(r, q.N*q.C*q.H*q.W)
		qh, qw := q.OutSize()
		got, want := make([]float32, q.N*q.K*qh*qw), make([]float32, q.N*q.K*qh*qw)
		Conv2DBF16Packed(q, x8, pw, bias, got)
		amxConv2D(amxKernelAsm, q, x8, wh, bias, want)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%+v after the tap order: y[%d] = %g, want %g", q, i, got[i], want[i])
			}
		}
	}
	t.Logf("direct AMX convolution: equal to the twin bit for bit; largest error relative to the largest |y| of the float32 convolution of the rounded inputs %.3g (limit 4e-6)", worst)
	if !(worst <= 4e-6) {
		t.Errorf("error %.3g exceeds 4e-6", worst)
	}
}

// BenchmarkAMXConv runs the UNet's and the VAE's 3×3 convolutions as the direct AMX convolution
// and as amxConv2D (im2col packed into pair panels).
func BenchmarkAMXConv(b *testing.B) {
	if !amxOn() {
		b.Skip("no AMX here")
	}
	for _, s := range [][4]int{{2, 320, 64, 64}, {2, 640, 32, 32}, {2, 1280, 16, 16}, {2, 1280, 8, 8}, {2, 2560, 8, 8}, {1, 512, 64, 64}, {1, 256, 128, 128}} {
		p := ConvParams{N: s[0], C: s[1], H: s[2], W: s[3], K: s[1], KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
		r := rand.New(rand.NewSource(1))
		x, wf := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*9)
		wh, _ := bf16Rounded(wf)
		a := make([]uint32, len(wh)/2)
		amxTapPairs(a, wh, p.K, p.C, 9)
		y := make([]float32, p.N*p.K*p.H*p.W)
		flops := 2 * float64(p.N*p.K*p.H*p.W*p.C*9)
		for _, mode := range []string{"direct", "im2col"} {
			run := func() { amxConvDirect(amxKernelAsm, p, x, a, nil, y) }
			if mode == "im2col" {
				run = func() { amxConv2D(amxKernelAsm, p, x, wh, nil, y) }
			}
			b.Run(fmt.Sprintf("%dx%dx%dx%d_%s", s[0], s[1], s[2], s[3], mode), func(b *testing.B) { sgemmBench(b, flops, run) })
		}
	}
}
