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

	"github.com/smallsd/smallsd/internal/benchutil"
	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// benchModels holds the full-size models, built once per test binary, by weight format.
var benchModels [3]struct {
	once  sync.Once
	model *Model
	err   error
}

// Weight formats of the benchmark models.
const (
	benchFP32 = iota
	benchHalf // weight matrices kept as fp16 (View.Half)
	benchBF16 // weight matrices kept as bf16 (View.BF16): bf16 products where AVX512-BF16 pays
)

// smallSD builds the full-size small-sd UNet with synthetic weights, float32 or (half) with
// its weight matrices kept as fp16.
func smallSD(b *testing.B, half bool) *Model {
	if half {
		return smallSDFormat(b, benchHalf)
	}
	return smallSDFormat(b, benchFP32)
}

// smallSDFormat builds the full-size small-sd UNet with synthetic weights in the format f
// (benchFP32, benchHalf or benchBF16), once per test binary.
func smallSDFormat(b *testing.B, f int) *Model {
	bm := &benchModels[f]
	bm.once.Do(func() {
		cfg, err := LoadConfig("../testdata/configs/unet/config.json")
		if err != nil {
			bm.err = err
			return
		}
		start := time.Now()
		w := weights.NewSynthetic().View()
		switch f {
		case benchHalf:
			w = w.Half()
		case benchBF16:
			w = w.BF16()
		}
		bm.model, bm.err = New(cfg, w)
		b.Logf("built small-sd (%s weights) with synthetic weights in %v", [...]string{"fp32", "fp16", "bf16"}[f], time.Since(start).Round(time.Millisecond))
	})
	if bm.err != nil {
		b.Fatal(bm.err)
	}
	return bm.model
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
func BenchmarkUNetSmallSD(b *testing.B) { benchForward(b, smallSD(b, false)) }

// BenchmarkUNetSmallSDHalf is BenchmarkUNetSmallSD with the weight matrices kept as fp16
// (weights' View.Half), widened while packing. Run it on its own: a binary that also ran
// BenchmarkUNetSmallSD holds both models and its RSS counts both.
//
//	go test ./unet -run '^$' -bench UNetSmallSDHalf -benchtime 1x -count 3
func BenchmarkUNetSmallSDHalf(b *testing.B) { benchForward(b, smallSD(b, true)) }

// BenchmarkUNetSmallSDBF16 is BenchmarkUNetSmallSD with bf16 weights (pipeline.BF16): bf16
// matrix products where the CPU has AVX512-BF16 and it pays (kernels.BF16Status). Run it on its own, as BenchmarkUNetSmallSDHalf.
//
//	go test ./unet -run '^$' -bench UNetSmallSDBF16 -benchtime 1x -count 3
func BenchmarkUNetSmallSDBF16(b *testing.B) { benchForward(b, smallSDFormat(b, benchBF16)) }

func benchForward(b *testing.B, m *Model) {
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
			cpu0 := benchutil.CPUSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.Forward(ctx, sample, 981, text); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu := (benchutil.CPUSeconds() - cpu0) / float64(b.N)
			sec := b.Elapsed().Seconds() / float64(b.N)
			flops := m.Config().FLOPs(2, size, size, 77)
			prog := m.program(sample.Shape(), text.Shape())
			b.ReportMetric(sec, "s/forward")
			b.ReportMetric(flops/sec/1e9, "GFLOP/s")
			b.ReportMetric(float64(prog.PeakBytes()), "PeakBytes")
			b.ReportMetric(procStatus("VmHWM"), "peakRSSBytes")
			// CPU time (all threads) says how much work a forward is when other processes
			// share the cores and the wall time is inflated.
			b.ReportMetric(cpu, "cpu-s/forward")
			b.Logf("%d×%d: %.1f GFLOP, first run (with compile) %v, PeakBytes %.0f MB, buffers %.0f MB",
				size, size, flops/1e9, first.Round(time.Millisecond), float64(prog.PeakBytes())/1e6, float64(prog.BufferBytes())/1e6)
		})
	}
}

// BenchmarkUNetSmallSDBlocks times each top-level module of the small-sd UNet on its own
// (batch 2, 64×64 latents), each in a graph of its own with inputs of the shapes the full
// forward gives it, to show where the time goes:
//
//	go test ./unet -run '^$' -bench UNetSmallSDBlocks -benchtime 1x
func BenchmarkUNetSmallSDBlocks(b *testing.B) {
	m := smallSD(b, false)
	m.dropPrograms()
	const size = 64
	parts := m.Config().flopsByPart(2, size, size, 77)
	flops := map[string]float64{}
	for _, p := range parts {
		flops[p.name] = p.flops
	}
	_, nodes, err := m.build([]int{2, 4, size, size}, []int{2, 77, 768})
	if err != nil {
		b.Fatal(err)
	}
	shape := func(name string) []int { return []int(nodes[name].Shape()) }
	rng := rand.New(rand.NewSource(1))
	temb := randomDense(rng, shape("time_embedding")...)
	text := randomDense(rng, 2, 77, 768)
	// The states each up block consumes, as the full forward hands them out.
	skipShapes := [][]int{shape("conv_in")}
	for i, blk := range m.downBlocks {
		for j := range blk.Resnets {
			name := fmt.Sprintf("down_blocks.%d.resnets.%d", i, j)
			if blk.Attentions != nil {
				name = fmt.Sprintf("down_blocks.%d.attentions.%d", i, j)
			}
			skipShapes = append(skipShapes, shape(name))
		}
		if blk.Downsampler != nil {
			skipShapes = append(skipShapes, shape(fmt.Sprintf("down_blocks.%d.downsamplers.0", i)))
		}
	}
	run := func(b *testing.B, name string, inShapes [][]int, build func(g *gorgonia.ExprGraph, in []*gorgonia.Node) (*gorgonia.Node, error)) {
		g := gorgonia.NewGraph()
		var ins []*gorgonia.Node
		var vals []*tensor.Dense
		for k, s := range inShapes {
			ins = append(ins, gorgonia.NewTensor(g, tensor.Float32, len(s), gorgonia.WithShape(s...), gorgonia.WithName(fmt.Sprintf("in%d", k))))
			vals = append(vals, randomDense(rng, s...))
		}
		out, err := build(g, ins)
		if err != nil {
			b.Fatal(err)
		}
		prog, err := nn.Compile(g, ins, []*gorgonia.Node{out})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := prog.Run(context.Background(), vals...); err != nil { // allocate buffers
			b.Fatal(err)
		}
		cpu0 := benchutil.CPUSeconds()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := prog.Run(context.Background(), vals...); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		sec := b.Elapsed().Seconds() / float64(b.N)
		b.ReportMetric(sec, "s/op")
		b.ReportMetric((benchutil.CPUSeconds()-cpu0)/float64(b.N), "cpu-s/op")
		b.ReportMetric(flops[name]/sec/1e9, "GFLOP/s")
		b.ReportMetric(flops[name]/1e9, "GFLOP")
	}
	tp := tapper{}
	for i, blk := range m.downBlocks {
		in := shape("conv_in")
		if i > 0 {
			in = shape(fmt.Sprintf("down_blocks.%d", i-1))
		}
		name := fmt.Sprintf("down_blocks.%d", i)
		b.Run(name, func(b *testing.B) {
			run(b, name, [][]int{in, temb.Shape(), text.Shape()}, func(g *gorgonia.ExprGraph, x []*gorgonia.Node) (*gorgonia.Node, error) {
				h, _, err := blk.forward(x[0], x[1], x[2], tp)
				return h, err
			})
		})
	}
	if m.midBlock != nil {
		b.Run("mid_block", func(b *testing.B) {
			run(b, "mid_block", [][]int{shape(fmt.Sprintf("down_blocks.%d", len(m.downBlocks)-1)), temb.Shape(), text.Shape()},
				func(g *gorgonia.ExprGraph, x []*gorgonia.Node) (*gorgonia.Node, error) {
					return m.midBlock.forward(x[0], x[1], x[2], tp)
				})
		})
	}
	in := shape("mid_block")
	for i, blk := range m.upBlocks {
		k := len(blk.Resnets)
		skips := skipShapes[len(skipShapes)-k:]
		skipShapes = skipShapes[:len(skipShapes)-k]
		name := fmt.Sprintf("up_blocks.%d", i)
		shapes := append([][]int{in, temb.Shape(), text.Shape()}, skips...)
		b.Run(name, func(b *testing.B) {
			run(b, name, shapes, func(g *gorgonia.ExprGraph, x []*gorgonia.Node) (*gorgonia.Node, error) {
				return blk.forward(x[0], x[3:], x[1], x[2], nil, tp)
			})
		})
		in = shape(name)
	}
}

// BenchmarkUNetSmallSDFormats alternates forwards of the fp32, fp16 and bf16 small-sd UNets
// (batch 2, 64×64 latents) in one process, one of each per iteration, so that other work on the
// machine weighs on the three alike, and reports each format's median and best CPU seconds and
// median wall seconds per forward. The process holds all three models (about 6 GB).
//
//	go test ./unet -run '^$' -bench UNetSmallSDFormats -benchtime 3x
func BenchmarkUNetSmallSDFormats(b *testing.B) {
	names := []string{"fp32", "fp16", "bf16"}
	var ms []*Model
	for f := range names {
		ms = append(ms, smallSDFormat(b, f))
	}
	rng := rand.New(rand.NewSource(1))
	sample, text := randomDense(rng, 2, 4, 64, 64), randomDense(rng, 2, 77, 768)
	ctx := context.Background()
	benchutil.Alternate(b, names, "forward", func(f int) error {
		_, err := ms[f].Forward(ctx, sample, 981, text)
		return err
	})
}
