package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/smallsd/smallsd/internal/benchutil"
)

// The AMX kernel's tests that run on every machine: TDPBF16PS's arithmetic, the generated tile
// program in the simulator (amx_sim_test.go), directly and under linearAMX's blocking, against
// the plain-Go twin (bit for bit: both follow the SDM's order) and float64.

// bf16Bits returns the bf16 bits of f (f must be representable).
func bf16Bits(t *testing.T, f float64) uint32 {
	h := bf16FromF32(float32(f))
	if float64(bf16Float(uint32(h))) != f && f != 0 && math.Abs(f) >= 0x1p-126 {
		t.Fatalf("%g is not a bf16 value", f)
	}
	return uint32(h)
}

func TestAMXDot(t *testing.T) {
	pair := func(lo, hi float64) uint32 { return bf16Bits(t, lo) | bf16Bits(t, hi)<<16 }
	ones := []uint32{pair(1, 1), pair(1, 1), pair(1, 1)}
	cases := []struct {
		name string
		c    float32
		a, b []uint32
		want float32
	}{
		{"even and odd sums", 0.5, []uint32{pair(2, 3)}, []uint32{pair(5, 7)}, 0.5 + 10 + 21},
		// The even lane accumulates in fp32, in order: 2^24 + 1 rounds back to 2^24 (nearest
		// even) before −2^24 cancels it, where an exact dot product would give 1.
		{"sequential fp32 lanes", 0, []uint32{pair(0x1p24, 0), pair(1, 0), pair(-0x1p24, 0)}, ones, 0},
		// The lanes are separate: 2^24 in the even and 1 in the odd lane meet only at the end.
		{"lanes summed last", 0, []uint32{pair(0x1p24, 1), pair(1, 0), pair(-0x1p24, 0)}, ones, 1},
		// Denormal bf16 inputs are zero (DAZ): 0x0001 is 2^-133 as a float.
		{"DAZ on inputs", 0, []uint32{0x0001 | pair(0, 1)&0xffff0000}, []uint32{pair(0x1p100, 2)}, 2},
		// A product below fp32's normal range is flushed (FTZ), as is a denormal C.
		{"FTZ on products", 0, []uint32{pair(0x1p-70, 0)}, []uint32{pair(0x1p-70, 0)}, 0},
		{"DAZ on C", math.Float32frombits(1), []uint32{pair(0, 0)}, []uint32{pair(0, 0)}, 0},
		{"normal tiny product kept", 0, []uint32{pair(0x1p-60, 0)}, []uint32{pair(0x1p-60, 0)}, 0x1p-120},
	}
	for _, c := range cases {
		if got := amxDot(c.c, c.a, c.b); got != c.want || math.Signbit(float64(got)) != math.Signbit(float64(c.want)) {
			t.Errorf("%s: amxDot = %g, want %g", c.name, got, c.want)
		}
	}
}

// amxRandPairs returns n random bf16 pairs from normal values in [-1, 1).
func amxRandPairs(r *rand.Rand, n int) []uint32 {
	p := make([]uint32, n)
	for i := range p {
		p[i] = uint32(bf16FromF32(r.Float32()*2-1)) | uint32(bf16FromF32(r.Float32()*2-1))<<16
	}
	return p
}

// amxKernelRef is one tile-kernel call's contract computed directly with amxDot, for B pair
// panels (k tile t at bj + 1024·t bytes, rows 64 bytes apart) and C, I with row strides ldc, ldi.
func amxKernelRef(a []uint32, lda int, b0, b1 []uint32, c []float32, ldc int, init []float32, ldi, kt int) {
	col := make([]uint32, amxKT)
	out := make([]float32, amxMR*amxNR)
	for r := 0; r < amxMR; r++ {
		for x := 0; x < amxNR; x++ {
			b := b0
			if x >= sgemmNR {
				b = b1
			}
			acc := init[r*ldi+x]
			for t := 0; t < kt; t++ {
				for k := range col {
					col[k] = b[(t*amxKT+k)*sgemmNR+x%sgemmNR]
				}
				acc = amxDot(acc, a[r*lda+t*amxKT:r*lda+(t+1)*amxKT], col)
			}
			out[r*amxNR+x] = acc
		}
	}
	for r := 0; r < amxMR; r++ {
		copy(c[r*ldc:r*ldc+amxNR], out[r*amxNR:])
	}
}

// TestAMXSimKernel runs the generated kernel in the simulator on a list of calls whose operands
// are exactly as large as each call may read, and compares every element with amxKernelRef, bit
// for bit: accumulators starting as C, as a row of a bias (row stride 0) and as zeros, calls
// that update the C an earlier call wrote, and C's padding columns untouched.
func TestAMXSimKernel(t *testing.T) {
	r := rand.New(rand.NewSource(21))
	for _, kt := range []int{1, 2, 5} {
		lda, ldc := amxKT*kt+3, amxNR+7
		a := amxRandPairs(r, (amxMR-1)*lda+amxKT*kt)
		b0, b1 := amxRandPairs(r, amxKT*sgemmNR*kt), amxRandPairs(r, amxKT*sgemmNR*kt)
		c := make([]float32, (amxMR-1)*ldc+amxNR)
		for i := range c {
			c[i] = r.Float32()
		}
		bias := make([]float32, amxNR)
		for i := range bias {
			bias[i] = r.Float32()
		}
		want := append([]float32(nil), c...)
		biasRows := make([]float32, amxMR*amxNR)
		for i := range biasRows {
			biasRows[i] = bias[i%amxNR]
		}
		zeros := make([]float32, amxMR*amxNR)
		// C += A·B, then C = bias + A·B, then C = A·B, then C += A·B again, in one kernel call.
		amxKernelRef(a, lda, b0, b1, want, ldc, want, ldc, kt)
		amxKernelRef(a, lda, b0, b1, want, ldc, biasRows, amxNR, kt)
		amxKernelRef(a, lda, b0, b1, want, ldc, zeros, amxNR, kt)
		amxKernelRef(a, lda, b0, b1, want, ldc, want, ldc, kt)
		batch := &amxBatch{kern: amxKernelSim}
		offs, bmax := amxPanelOffs, amxPanelOffs[kt-1]
		batch.add(a, lda, b0, b1, offs, bmax, amxTileColsB, c, c[sgemmNR:], ldc, c, c[sgemmNR:], ldc, kt)
		batch.add(a, lda, b0, b1, offs, bmax, amxTileColsB, c, c[sgemmNR:], ldc, bias, bias[sgemmNR:], 0, kt)
		batch.add(a, lda, b0, b1, offs, bmax, amxTileColsB, c, c[sgemmNR:], ldc, amxZeroRow[:], amxZeroRow[:], 0, kt)
		batch.add(a, lda, b0, b1, offs, bmax, amxTileColsB, c, c[sgemmNR:], ldc, c, c[sgemmNR:], ldc, kt)
		batch.run()
		bad := 0
		for i := range c {
			if math.Float32bits(c[i]) != math.Float32bits(want[i]) {
				if bad++; bad <= 3 {
					t.Errorf("kt=%d: c[%d][%d] = %g, want %g", kt, i/ldc, i%ldc, c[i], want[i])
				}
			}
		}
	}
}

// TestAMXSimFaults shows that the simulator catches a broken program: each mutation of the
// kernel's operation list or configuration must fault.
func TestAMXSimFaults(t *testing.T) {
	const kt = 2
	mutate := func(f func(p []amxOp) []amxOp, cfg func(c *[64]byte)) error {
		p := f(append([]amxOp(nil), amxKernelProgram()...))
		c := amxTileConfig()
		cfg(&c)
		r := rand.New(rand.NewSource(1))
		a, b0, b1 := amxRandPairs(r, amxMR*amxKT*kt), amxRandPairs(r, amxKT*sgemmNR*kt), amxRandPairs(r, amxKT*sgemmNR*kt)
		cm := make([]float32, amxMR*amxNR)
		var calls []amxCall
		batch := &amxBatch{kern: func(cs []amxCall) { calls = append(calls, cs...) }}
		for range 2 {
			batch.add(a, amxKT*kt, b0, b1, amxPanelOffs, amxPanelOffs[kt-1], amxTileColsB, cm, cm[sgemmNR:], amxNR, cm, cm[sgemmNR:], amxNR, kt)
		}
		batch.run()
		var err error
		func() {
			defer func() {
				if e := recover(); e != nil {
					err = fmt.Errorf("%v", e)
				}
			}()
			err = amxSimulateCalls(p, c, calls)
		}()
		return err
	}
	same := func(p []amxOp) []amxOp { return p }
	noCfg := func(*[64]byte) {}
	edit := func(match func(op amxOp) bool, f func(op *amxOp)) func(p []amxOp) []amxOp {
		return func(p []amxOp) []amxOp {
			for i := range p {
				if match(p[i]) {
					f(&p[i])
					break
				}
			}
			return p
		}
	}
	kind := func(k string) func(op amxOp) bool { return func(op amxOp) bool { return op.Kind == k } }
	loads := func(r string) func(op amxOp) bool {
		return func(op amxOp) bool { return op.Kind == "ldq" && op.R == r }
	}
	drop := func(kind string) func(p []amxOp) []amxOp {
		return func(p []amxOp) []amxOp {
			var q []amxOp
			for _, op := range p {
				if op.Kind != kind {
					q = append(q, op)
				}
			}
			return q
		}
	}
	if err := mutate(same, noCfg); err != nil {
		t.Fatalf("the kernel itself faults: %v", err)
	}
	faults := []struct {
		name string
		prog func([]amxOp) []amxOp
		cfg  func(*[64]byte)
	}{
		{"no TILERELEASE", drop("tilerelease"), noCfg},
		{"no LDTILECFG", drop("ldtilecfg"), noCfg},
		{"palette 0", same, func(c *[64]byte) { c[0] = 0 }},
		{"reserved byte set", same, func(c *[64]byte) { c[5] = 1 }},
		{"tile 9 configured", same, func(c *[64]byte) { c[48+9] = 16; c[16+18] = 64 }},
		{"A tile of 8 rows", same, func(c *[64]byte) { c[48+4] = 8 }},
		{"B tile 32 bytes wide", same, func(c *[64]byte) { c[16+2*6] = 32 }},
		{"k tiles read from the ldc field", edit(loads("CX"), func(op *amxOp) { op.Imm = 8 * 8 }), noCfg},
		{"A rows past the end", edit(kind("shl"), func(op *amxOp) { op.Imm++ }), noCfg},
		{"argument order", edit(kind("arg"), func(op *amxOp) { op.Imm = 0 }), noCfg},
		{"calls 8 bytes short", edit(func(op amxOp) bool { return op.Kind == "addi" && op.R == "R13" }, func(op *amxOp) { op.Imm -= 8 }), noCfg},
		{"repeated tile", edit(kind("tdpbf16ps"), func(op *amxOp) { op.T[2] = op.T[1] }), noCfg},
	}
	for _, f := range faults {
		err := mutate(f.prog, f.cfg)
		if err == nil {
			t.Errorf("%s: no fault", f.name)
			continue
		}
		t.Logf("%s: %v", f.name, err)
	}
}

// amxLinearShapes are rows×in→out cases for linearAMX: edges of 32×32 blocks and of 16-pair k
// tiles, odd in, a last block of at most 16 columns, two k blocks (in > 2·amxKC), two B blocks
// (out > amxNC), and x rounded once and read in place (in a multiple of 32, out > amxNC).
var amxLinearShapes = [][3]int{{1, 1, 1}, {5, 7, 9}, {32, 32, 32}, {33, 33, 47}, {37, 2*amxKC + 77, 45},
	{40, 70, amxNC + 44}, {70, 320, 16}, {64, 64, 64}, {70, 64, amxNC + 50}}

// TestLinearAMXSim runs linearAMX on the simulated kernel: bit for bit the plain-Go twin, within
// 1e-5 of float64 on the bf16-rounded inputs, and close to the AVX512-BF16 twin (another order of
// the same products).
func TestLinearAMXSim(t *testing.T) {
	r := rand.New(rand.NewSource(22))
	worst := map[string]float64{}
	for i, s := range amxLinearShapes {
		rows, in, out := s[0], s[1], s[2]
		x, wf := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out*in)
		wh, wr := bf16Rounded(wf)
		_, xr := bf16Rounded(x)
		var bias []float32
		if i%2 == 1 {
			bias = sgemmRandSlice(r, out)
		}
		ref := sgemmRef(false, true, rows, out, in, 1, xr, in, wr, in, 0, nil, out)
		for j := range ref {
			if bias != nil {
				ref[j] += float64(bias[j%out])
			}
		}
		twin := make([]float32, rows*out)
		linearAMXGeneric(x, rows, in, wh, out, bias, twin)
		pairTwin := make([]float32, rows*out)
		withBF16Path("bf16-twin", func() { LinearBF16(x, rows, in, wh, out, bias, pairTwin) })
		for _, procs := range []int{1, 3} {
			old := runtime.GOMAXPROCS(procs)
			y := make([]float32, rows*out)
			for j := range y {
				y[j] = float32(math.NaN())
			}
			linearAMX(amxKernelSim, x, rows, in, wh, out, bias, y, out, 0, 0)
			runtime.GOMAXPROCS(old)
			for j := range y {
				if y[j] != twin[j] {
					t.Fatalf("procs=%d %dx%d→%d: y[%d][%d] = %g, plain-Go twin %g", procs, rows, in, out, j/out, j%out, y[j], twin[j])
				}
			}
			worst["vs float64 on the rounded inputs"] = math.Max(worst["vs float64 on the rounded inputs"], sgemmRelErr(y, out, ref, rows, out))
		}
		worst["vs the VDPBF16PS twin"] = math.Max(worst["vs the VDPBF16PS twin"], amxRel(twin, pairTwin))
	}
	// 10× the largest error measured (3.2e-7 on the Zen 5, the same on every path: plain Go).
	logWorst(t, "linearAMX (simulated kernel)", "largest relative", worst, 4e-6)
}

// TestAMXSelfTest runs the self-test on the simulated kernel (it must pass) and on broken kernels
// (it must fail).
func TestAMXSelfTest(t *testing.T) {
	if err := amxSelfTest(amxKernelSim); err != nil {
		t.Fatalf("self-test on the simulated kernel: %v", err)
	}
	broken := map[string]amxKernelFunc{
		"B panels swapped": func(calls []amxCall) {
			for i := range calls {
				calls[i].b0, calls[i].b1 = calls[i].b1, calls[i].b0
			}
			amxKernelSim(calls)
		},
		"last k tile dropped": func(calls []amxCall) {
			for i := range calls {
				calls[i].kt = max(calls[i].kt-1, 1)
			}
			amxKernelSim(calls)
		},
		"one element off by an ulp": func(calls []amxCall) {
			amxKernelSim(calls)
			c := calls[0]
			v := (*float32)(unsafe.Add(c.c0, 4*(5*c.ldc+7)))
			*v = math.Nextafter32(*v, float32(math.Inf(1)))
		},
	}
	for name, k := range broken {
		err := amxSelfTest(k)
		if err == nil {
			t.Errorf("%s: the self-test passed", name)
			continue
		}
		if !strings.Contains(err.Error(), "plain Go") {
			t.Errorf("%s: unexpected error %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}

// TestAMXStatus checks that AMXStatus names why AMX is off, or is nil only where the CPU has it.
func TestAMXStatus(t *testing.T) {
	err := AMXStatus()
	if cpuErr := amxCPU(); cpuErr != nil {
		if err == nil {
			t.Fatalf("AMXStatus is nil although %v", cpuErr)
		}
		t.Logf("AMX off: %v", err)
		return
	}
	if err != nil {
		t.Fatalf("the CPU and OS support AMX but the path is off: %v", err)
	}
}

// TestLinearAMXAllocs checks that linearAMX allocates nothing after warm-up (on one core; the
// kernel here does nothing, as the driver is what is measured).
func TestLinearAMXAllocs(t *testing.T) {
	if sgemmRace {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	r := rand.New(rand.NewSource(24))
	rows, in, out := 40, 70, amxNC+44
	x, wf := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out*in)
	wh, _ := bf16Rounded(wf)
	y, bias := make([]float32, rows*out), sgemmRandSlice(r, out)
	nop := func(calls []amxCall) {}
	run := func() { linearAMX(nop, x, rows, in, wh, out, bias, y, out, 0, 0) }
	run()
	if allocs := testing.AllocsPerRun(10, run); allocs != 0 {
		t.Errorf("%.1f allocations per linearAMX, want 0", allocs)
	}
}

// amxConvShapes are convolutions for amxConv2D: batched with 64 and with 48 output columns an
// image (32-column blocks then straddle images), one odd-sized image, 1×1 kernels, weights of
// whole k tiles (C·KH·KW a multiple of 32: read in place but for the last, partial row block).
var amxConvShapes = []ConvParams{
	{N: 2, C: 5, H: 8, W: 8, K: 33, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
	{N: 2, C: 6, H: 4, W: 12, K: 40, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
	{N: 1, C: 7, H: 9, W: 7, K: 20, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
	{N: 2, C: 9, H: 6, W: 11, K: 17, KH: 1, KW: 1, StrideH: 1, StrideW: 1},
	{N: 2, C: 40, H: 4, W: 8, K: 64, KH: 1, KW: 1, StrideH: 1, StrideW: 1},
	{N: 2, C: 32, H: 4, W: 8, K: 40, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}, // weights read in place
	{N: 1, C: 64, H: 5, W: 5, K: 70, KH: 1, KW: 1, StrideH: 1, StrideW: 1},                   // in place, 1×1
}

// TestAMXGemmSim runs amxGemm (simulated kernel) on the other operand forms it takes: C batched
// by column blocks (LinearBF16Parts' layout, blocks of 48 columns so that 32-column tiles straddle
// them), and convolutions through amxConv2D (bf16 weights as A, the implicit im2col matrix as B,
// bias per row, batched and per image), against the VDPBF16PS twin (the same rounded inputs, another order of
// sums).
func TestAMXGemmSim(t *testing.T) {
	r := rand.New(rand.NewSource(25))
	worst := map[string]float64{}
	// Batched C: columns [48i, 48i+48) of the product as the rows×48 matrix at y[i·rows·48:].
	const rows, in, out, part = 37, 75, 144, 48
	x, wf, bias := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out*in), sgemmRandSlice(r, out)
	wh, _ := bf16Rounded(wf)
	full := make([]float32, rows*out)
	withBF16Path("bf16-twin", func() { LinearBF16(x, rows, in, wh, out, bias, full) })
	want := make([]float32, rows*out)
	for i := 0; i < rows; i++ {
		for j := 0; j < out; j++ {
			want[(j/part)*rows*part+i*part+j%part] = full[i*out+j]
		}
	}
	got := make([]float32, rows*out)
	linearAMX(amxKernelSim, x, rows, in, wh, out, bias, got, part, part, rows*part)
	worst["batched C"] = amxRel(got, want)

	for _, p := range amxConvShapes {
		oh, ow := p.OutSize()
		x, wf, bias := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*p.KH*p.KW), sgemmRandSlice(r, p.K)
		wh, _ := bf16Rounded(wf)
		want := make([]float32, p.N*p.K*oh*ow)
		withBF16Path("bf16-twin", func() { Conv2DBF16(p, x, wh, bias, want) })
		got := make([]float32, len(want))
		amxConv2D(amxKernelSim, p, x, wh, bias, got)
		worst[fmt.Sprintf("conv %+v", p)] = amxRel(got, want)
	}
	logWorst(t, "amxGemm (simulated kernel) vs the VDPBF16PS twin", "largest relative", worst, 4e-6) // measured ≤ 3.6e-7
}

// amxRel is the largest difference of got and want relative to max(1, max|want|).
func amxRel(got, want []float32) float64 {
	w64 := make([]float64, len(want))
	for i, v := range want {
		w64[i] = float64(v)
	}
	return sgemmRelErr(got, len(got), w64, 1, len(got))
}

// BenchmarkAMXDriver measures what the AMX path costs besides the tile products: packing and
// blocking (LinearBF16's and Conv2DBF16's benchmark shapes) with a kernel that does nothing, so
// that it can be measured on any machine; GFLOP/s are those of the whole product at that cost.
func BenchmarkAMXDriver(b *testing.B) {
	nop := func(calls []amxCall) {}
	r := rand.New(rand.NewSource(1))
	for _, s := range [][3]int{{8192, 320, 320}, {2048, 640, 5120}, {154, 768, 3072}} {
		x, wf := sgemmRandSlice(r, s[0]*s[1]), sgemmRandSlice(r, s[1]*s[2])
		wh, _ := bf16Rounded(wf)
		y := make([]float32, s[0]*s[2])
		b.Run(fmt.Sprintf("linear_%dx%dx%d", s[0], s[1], s[2]), func(b *testing.B) {
			linearAMX(nop, x, s[0], s[1], wh, s[2], nil, y, s[2], 0, 0) // warm-up: pooled buffers
			b.ResetTimer()
			cpu0 := benchutil.CPUSeconds()
			for i := 0; i < b.N; i++ {
				linearAMX(nop, x, s[0], s[1], wh, s[2], nil, y, s[2], 0, 0)
			}
			sgemmReport(b, 2*float64(s[0]*s[1]*s[2]), cpu0)
		})
	}
	for _, s := range [][4]int{{2, 320, 64, 64}, {2, 1280, 16, 16}} {
		p := ConvParams{N: s[0], C: s[1], H: s[2], W: s[3], K: s[1], KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
		x, wf := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*9)
		wh, _ := bf16Rounded(wf)
		y := make([]float32, p.N*p.K*p.H*p.W)
		b.Run(fmt.Sprintf("conv_%dx%dx%dx%d_3x3", s[0], s[1], s[2], s[3]), func(b *testing.B) {
			amxConv2D(nop, p, x, wh, nil, y)
			b.ResetTimer()
			cpu0 := benchutil.CPUSeconds()
			for i := 0; i < b.N; i++ {
				amxConv2D(nop, p, x, wh, nil, y)
			}
			sgemmReport(b, 2*float64(p.N*p.K*p.H*p.W*p.C*9), cpu0)
		})
	}
}

// TestAMXGemmSimRandom runs linearAMX (simulated kernel) on random shapes, C layouts (plain or
// batched in column blocks of 16, 48 or 80, as LinearBF16Parts) and bias, on one and two workers: every element must
// equal the plain-Go twin's bit for bit, since its arithmetic does not depend on the blocking.
func TestAMXGemmSimRandom(t *testing.T) {
	r := rand.New(rand.NewSource(27))
	for c := 0; c < 25; c++ {
		rows, in := 1+r.Intn(90), 1+r.Intn(3*amxKC)
		if c%3 == 0 { // whole k tiles: x rounded once and read in place when out > amxNC
			in = 32 * (1 + r.Intn(3*amxKC/32))
		}
		part := []int{0, 16, 48, 80}[r.Intn(4)]
		out := 1 + r.Intn(400)
		if part > 0 {
			out = part * (1 + r.Intn(6))
		}
		x, wf := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out*in)
		wh, _ := bf16Rounded(wf)
		var bias []float32
		if r.Intn(2) == 0 {
			bias = sgemmRandSlice(r, out)
		}
		twin := make([]float32, rows*out)
		linearAMXGeneric(x, rows, in, wh, out, bias, twin)
		got := make([]float32, rows*out)
		for i := range got {
			got[i] = float32(math.NaN())
		}
		old := runtime.GOMAXPROCS(1 + c%2)
		if part == 0 {
			linearAMX(amxKernelSim, x, rows, in, wh, out, bias, got, out, 0, 0)
		} else {
			linearAMX(amxKernelSim, x, rows, in, wh, out, bias, got, part, part, rows*part)
		}
		runtime.GOMAXPROCS(old)
		for i := 0; i < rows; i++ {
			for j := 0; j < out; j++ {
				g := got[i*out+j]
				if part > 0 {
					g = got[(j/part)*rows*part+i*part+j%part]
				}
				if g != twin[i*out+j] {
					t.Fatalf("%d×%d→%d (parts of %d, bias %v): y[%d][%d] = %g, plain-Go twin %g", rows, in, out, part, bias != nil, i, j, g, twin[i*out+j])
				}
			}
		}
	}
}

// TestLinearAMXPackedSim runs linearAMXPacked (simulated kernel) on weights packed at load
// (PackLinearBF16, on the twin pair path so that it packs on every machine), whose pair panels
// it reads in place: bit for bit the plain-Go twin, plain and in parts; a packing whose k blocks
// are not whole k tiles is declined.
func TestLinearAMXPackedSim(t *testing.T) {
	r := rand.New(rand.NewSource(28))
	for _, s := range [][3]int{{37, 64, 45}, {70, 640, 48}, {33, 768, 304}, {64, 96, 16}, {40, 800, 32}} {
		rows, in, out := s[0], s[1], s[2]
		x, wf := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out*in)
		wh, _ := bf16Rounded(wf)
		bias := sgemmRandSlice(r, out)
		var pw *BF16Weight
		withBF16Path("bf16-twin", func() { pw = PackLinearBF16(wh, out, in) })
		if !pw.Packed() {
			t.Fatalf("%dx%d: PackLinearBF16 did not pack on the twin pair path", out, in)
		}
		twin := make([]float32, rows*out)
		linearAMXGeneric(x, rows, in, wh, out, bias, twin)
		whole := pw.kc%amxKT == 0 && (in+1)/2%amxKT == 0
		parts := []int{out}
		if out%16 == 0 && out > 16 {
			parts = append(parts, 16) // LinearBF16PackedParts' layout
		}
		for _, part := range parts {
			got := make([]float32, rows*out)
			ok := linearAMXPacked(amxKernelSim, x, rows, pw, bias, got, part, part%out, rows*part)
			if ok != whole {
				t.Fatalf("%dx%d→%d (k blocks of %d pairs): linearAMXPacked took it: %v", rows, in, out, pw.kc, ok)
			}
			if !ok {
				t.Logf("%dx%d→%d: k blocks of %d pairs, declined", rows, in, out, pw.kc)
				break
			}
			for i := 0; i < rows; i++ {
				for j := 0; j < out; j++ {
					g := got[(j/part)*rows*part+i*part+j%part]
					if g != twin[i*out+j] {
						t.Fatalf("%dx%d→%d (parts of %d, k blocks of %d): y[%d][%d] = %g, plain-Go twin %g", rows, in, out, part, pw.kc, i, j, g, twin[i*out+j])
					}
				}
			}
		}
	}
}

// amxNeedsCPU skips t with the reason where the AMX kernel cannot run, and fails it where it
// could but the self-test disabled it (a wrong kernel on AMX hardware).
func amxNeedsCPU(t *testing.T) {
	t.Helper()
	if err := amxCPU(); err != nil {
		t.Skipf("the real AMX kernel is not run: %v (the simulator tests cover its program)", err)
	}
	if err := AMXStatus(); err != nil {
		t.Fatalf("AMX is available but disabled: %v", err)
	}
}
