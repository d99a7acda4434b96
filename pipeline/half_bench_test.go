package pipeline

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/smallsd/smallsd/internal/benchutil"
	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/unet"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// BenchmarkUNetSmallSDWeights times one full-size small-sd UNet forward at batch 2 on synthetic
// weights held as float32 (fp32) or as halves (half, weights.View.Half), on 32×32 and 64×64
// latents. It reports seconds per forward, CPU seconds per forward, GFLOP/s, the weight bytes
// the Store handed out, the Go heap in use after building, and the process's peak RSS (reset
// before building where the kernel allows, so run one mode per process for clean RSS figures):
//
//	go test ./pipeline -run '^$' -bench 'UNetSmallSDWeights/half' -benchtime 1x -count 3 -timeout 1h
//	go test ./pipeline -run '^$' -bench 'UNetSmallSDWeights/fp32' -benchtime 1x -count 3 -timeout 1h
func BenchmarkUNetSmallSDWeights(b *testing.B) {
	if testing.Short() {
		b.Skip("full-size model: skipped with -short")
	}
	cfg, err := unet.LoadConfig(golden.Path("configs", "unet"))
	if err != nil {
		b.Fatal(err)
	}
	for _, half := range []bool{false, true} {
		mode := "fp32"
		if half {
			mode = "half"
		}
		b.Run(mode, func(b *testing.B) {
			runtime.GC()
			debug.FreeOSMemory()
			_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM
			store := weights.NewSynthetic()
			view := store.View()
			if half {
				view = view.Half()
			}
			t0 := time.Now()
			m, err := unet.New(cfg, view)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			build := time.Since(t0)
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.Logf("%s: built in %v; Store handed out %.1f MB of weights; Go heap in use %.1f MB",
				mode, build.Round(time.Millisecond), float64(store.LoadedBytes())/1e6, float64(ms.HeapInuse)/1e6)
			for _, size := range []int{32, 64} {
				b.Run(fmt.Sprintf("%dx%d", size, size), func(b *testing.B) {
					rng := rand.New(rand.NewSource(1))
					sample, text := randDense(rng, 2, 4, size, size), randDense(rng, 2, 77, 768)
					ctx := context.Background()
					if _, err := m.Forward(ctx, sample, 981, text); err != nil { // compile + first run
						b.Fatal(err)
					}
					cpu0 := benchutil.CPUTime()
					b.ResetTimer()
					for range b.N {
						if _, err := m.Forward(ctx, sample, 981, text); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					sec := b.Elapsed().Seconds() / float64(b.N)
					b.ReportMetric(sec, "s/forward")
					b.ReportMetric((benchutil.CPUTime()-cpu0).Seconds()/float64(b.N), "cpu-s/forward")
					b.ReportMetric(m.Config().FLOPs(2, size, size, 77)/sec/1e9, "GFLOP/s")
					b.ReportMetric(float64(store.LoadedBytes())/1e6, "MB-weights")
					b.ReportMetric(float64(ms.HeapInuse)/1e6, "MB-heap-built")
					if hwm := procKB("/proc/self/status", "VmHWM"); hwm > 0 {
						b.ReportMetric(float64(hwm)/(1<<20), "GiB-peak-RSS")
					}
					b.ReportMetric(0, "ns/op")
				})
			}
		})
	}
}

func randDense(r *rand.Rand, shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(r.NormFloat64())
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
}
