package kernels

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"sync"
	"time"
)

// Whether the VDPBF16PS kernels pay. AVX512-BF16 does not mean fast bf16: VDPBF16PS does twice the
// work of an FMA per instruction, and on AMD Zen 4/5 it issues as fast (twice the FLOP rate of
// float32), but an Intel Xeon of the Sapphire Rapids class (AMX not exposed, 2 cores) ran it at
// one instruction every ~2 cycles, 80 GFLOP/s per core against 166 for zmm FMAs: there the bf16
// kernels were slower than the float32 ones on the same weights (small-sd UNet 12.2 against 8.3
// CPU-s per forward). So at first use a short loop of each (bf16ProbeDot, bf16ProbeFMA:
// independent chains, no memory) is timed on one thread, interleaved, best of a few, and the
// bf16 pair path is taken only where VDPBF16PS gives at least bf16MinGain times the FMA's
// FLOP/s; elsewhere the bf16 weights are widened into the float32 kernels as on CPUs without
// AVX512-BF16 (they stay bf16 in memory).

// bf16MinGain is the least VDPBF16PS/FMA FLOP ratio at which the bf16 kernels are used: beyond
// the products they round their inputs to bf16 (a pass the float32 kernels do not make), and
// a ratio near 1 would let timing noise decide.
const bf16MinGain = 1.25

// bf16ProbeIters is the probe loop's iterations (16 instructions each): at 1.2 G VDPBF16PS per
// second, 55 µs; bf16ProbeReps repetitions of both then take well under 1 ms.
const (
	bf16ProbeIters = 4096
	bf16ProbeReps  = 7
)

// bf16Force overrides the measurement (tests): 0 uses it, 1 takes the VDPBF16PS kernels where
// the CPU has them, −1 widens into the float32 kernels.
var bf16Force = 0

// bf16EnvVar names the environment variable that overrides the measurement for a whole process
// (to compare both paths on one machine, in benchmarks and the models' accuracy tests): "on"
// takes the VDPBF16PS kernels where the CPU has them, "off" widens; GODEBUG=cpu.avx512bf16=off
// also turns them off, as the CPU feature.
const bf16EnvVar = "SMALLSD_BF16_KERNELS"

// bf16Gate is the outcome of the measurement.
type bf16Gate struct {
	on       bool
	dot, fma float64 // GFLOP/s on one thread
	err      error   // why there was no measurement
	forced   string  // the environment setting that decided instead
}

// bf16Check measures once, on the first bf16 call or packing that asks.
var bf16Check = sync.OnceValue(func() bf16Gate {
	if !(useBF16 && useAVX2 && useAVX512) {
		return bf16Gate{err: fmt.Errorf("CPU lacks AVX512-BF16 (or GODEBUG turned it or AVX-512 off)")}
	}
	dot, fma := bf16Measure()
	g := bf16Gate{on: dot >= bf16MinGain*fma, dot: dot, fma: fma}
	switch v := os.Getenv(bf16EnvVar); v {
	case "on", "off":
		g.on, g.forced = v == "on", bf16EnvVar+"="+v
	case "":
	default:
		slog.Warn(fmt.Sprintf("kernels: %s=%q is neither on nor off: ignored", bf16EnvVar, v))
	}
	slog.Info("kernels: bf16 " + g.reason())
	return g
})

// reason says what the measurement decided.
func (g bf16Gate) reason() string {
	if g.err != nil {
		return "kernels off: " + g.err.Error()
	}
	verdict := "kernels on"
	if !g.on {
		verdict = "kernels off, weights widened into the float32 kernels"
	}
	if g.forced != "" {
		verdict += " (" + g.forced + ")"
	}
	return fmt.Sprintf("%s: VDPBF16PS %.0f GFLOP/s against FMA %.0f per core (%.2f×, need %.2f×)",
		verdict, g.dot, g.fma, g.dot/g.fma, bf16MinGain)
}

// bf16Measure times the probe loops on one thread and returns their best rates in GFLOP/s:
// VDPBF16PS (64 FLOP an instruction) and VFMADD231PS (32).
func bf16Measure() (dot, fma float64) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// Warm up: a CPU may run 512-bit instructions slowly for some microseconds after a pause.
	bf16ProbeRun(false, bf16ProbeIters)
	bf16ProbeRun(true, bf16ProbeIters)
	best := [2]time.Duration{math.MaxInt64, math.MaxInt64}
	for r := 0; r < bf16ProbeReps; r++ {
		for i, d := range []bool{true, false} {
			t0 := time.Now()
			bf16ProbeRun(d, bf16ProbeIters)
			best[i] = min(best[i], max(time.Since(t0), time.Nanosecond))
		}
	}
	n := float64(16 * bf16ProbeIters)
	return 64 * n / float64(best[0].Nanoseconds()), 32 * n / float64(best[1].Nanoseconds())
}

// bf16Pays reports whether the VDPBF16PS kernels run faster than the float32 ones here (or a
// test forces the choice).
func bf16Pays() bool {
	switch bf16Force {
	case 1:
		return true
	case -1:
		return false
	}
	return bf16Check().on
}

// BF16Status reports whether LinearBF16, Conv2DBF16 and AttentionBF16 use the AVX512-BF16
// (VDPBF16PS) kernels on this CPU, and why: the CPU lacks the instructions
// (GODEBUG=cpu.avx512bf16=off says so too), or the rates measured at first use (see
// bf16MinGain; SMALLSD_BF16_KERNELS=on or off in the environment overrides them). When they
// are off, bf16 weights are widened into the float32 kernels. AMX, where it serves
// (AMXStatus), keeps the pair layout for its own shapes.
func BF16Status() (on bool, why string) {
	g := bf16Check()
	return bf16Kernels(), g.reason()
}
