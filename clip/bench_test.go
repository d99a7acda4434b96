package clip

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/benchutil"
	"github.com/smallsd/smallsd/weights"
)

// flopsL14 is the cost of one full-size forward at batch 2 × 77 tokens.
const flopsL14 = 26.6e9

// peakRSS returns the process's peak resident set (VmHWM) in bytes, or 0 when unknown.
func peakRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkTextEncoderL14 runs the full-size SD 1.x text encoder (synthetic weights) on two
// prompts of 77 tokens, as the pipeline does with classifier-free guidance.
func BenchmarkTextEncoderL14(b *testing.B) { benchText(b, weights.NewSynthetic().View()) }

// BenchmarkTextEncoderL14BF16 is BenchmarkTextEncoderL14 with bf16 weights (pipeline.BF16).
func BenchmarkTextEncoderL14BF16(b *testing.B) { benchText(b, weights.NewSynthetic().View().BF16()) }

func benchText(b *testing.B, w weights.View) {
	m, err := New(l14Config(b), w)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([][]int, 2)
	for r := range ids {
		ids[r] = make([]int, 77)
		for i := range ids[r] {
			ids[r][i] = (r*7919 + i*104729) % m.cfg.VocabSize
		}
	}
	ctx := context.Background()
	if _, err := m.Encode(ctx, ids); err != nil { // compile and allocate buffers
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := benchutil.CPUTime()
	for i := 0; i < b.N; i++ {
		if _, err := m.Encode(ctx, ids); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(sec, "s/forward")
	if cpu := (benchutil.CPUTime() - cpu0).Seconds(); cpu > 0 {
		// CPU-seconds per forward: what a quiet 2-core machine's wall time is about half of.
		b.ReportMetric(cpu/float64(b.N), "cpu-s/forward")
	}
	b.ReportMetric(flopsL14/sec/1e9, "GFLOP/s")
	b.ReportMetric(float64(m.program(2, 77).PeakBytes()), "PeakBytes")
	b.ReportMetric(peakRSS(), "peakRSS-bytes")
}
