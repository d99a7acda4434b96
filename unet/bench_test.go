package unet

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

var (
	benchOnce  sync.Once
	benchModel *Model
	benchErr   error
)

// smallSD builds the full-size small-sd UNet with synthetic weights once per test binary.
func smallSD(b *testing.B) *Model {
	benchOnce.Do(func() {
		cfg, err := LoadConfig("../testdata/configs/unet/config.json")
		if err != nil {
			benchErr = err
			return
		}
		start := time.Now()
		benchModel, benchErr = New(cfg, weights.NewSynthetic().View())
		b.Logf("built small-sd with synthetic weights in %v", time.Since(start).Round(time.Millisecond))
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchModel
}

func randomDense(rng *rand.Rand, shape ...int) *tensor.Dense {
	t := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	for i, d := 0, t.Float32s(); i < len(d); i++ {
		d[i] = float32(rng.NormFloat64())
	}
	return t
}

// procStatus returns a field of /proc/self/status in bytes (VmHWM: peak RSS), or -1.
func procStatus(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return -1
}

// BenchmarkUNetSmallSD times one full-size small-sd UNet forward at batch 2 (classifier-free
// guidance) on 64×64 latents (512×512 images) and 32×32 latents, with synthetic fp32 weights.
// It reports seconds per forward, GFLOP/s, the Program's PeakBytes (intermediates) and the
// process's peak RSS (weights included; reset before each size where the kernel allows).
//
//	go test ./unet -run '^$' -bench UNetSmallSD -benchtime 1x -count 3
func BenchmarkUNetSmallSD(b *testing.B) {
	m := smallSD(b)
	for _, size := range []int{64, 32} {
		b.Run(fmt.Sprintf("%dx%d", size, size), func(b *testing.B) {
			m.dropPrograms() // drop other sizes' programs so RSS reflects this one
			runtime.GC()
			debug.FreeOSMemory()
			_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM
			rng := rand.New(rand.NewSource(1))
			sample := randomDense(rng, 2, 4, size, size)
			text := randomDense(rng, 2, 77, 768)
			ctx := context.Background()
			start := time.Now()
			if _, err := m.Forward(ctx, sample, 981, text); err != nil { // compile + first run
				b.Fatal(err)
			}
			first := time.Since(start)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.Forward(ctx, sample, 981, text); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			sec := b.Elapsed().Seconds() / float64(b.N)
			flops := m.Config().FLOPs(2, size, size, 77)
			prog := m.program(sample.Shape(), text.Shape())
			b.ReportMetric(sec, "s/forward")
			b.ReportMetric(flops/sec/1e9, "GFLOP/s")
			b.ReportMetric(float64(prog.PeakBytes()), "PeakBytes")
			b.ReportMetric(procStatus("VmHWM"), "peakRSSBytes")
			b.Logf("%d×%d: %.1f GFLOP, first run (with compile) %v, PeakBytes %.0f MB, buffers %.0f MB",
				size, size, flops/1e9, first.Round(time.Millisecond), float64(prog.PeakBytes())/1e6, float64(prog.BufferBytes())/1e6)
		})
	}
}
