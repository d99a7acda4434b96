package unet

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/smallsd/smallsd/internal/benchutil"
	"github.com/smallsd/smallsd/lora"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// syntheticLoRA returns rank-r updates (random, small) for every layer a kohya LoRA patches in
// the small-sd UNet: each transformer's proj_in/proj_out and attention and feed-forward
// projections, and the weights they patch.
func syntheticLoRA(b *testing.B, r int) (lora.Updates, []weights.Request) {
	manifest, err := weights.ReadManifest("../testdata/manifests/unet-small-sd.txt")
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewSource(int64(r)))
	u := lora.Updates{}
	var patched []weights.Request
	for _, q := range manifest {
		name, ok := strings.CutSuffix(q.Name, ".weight")
		if !ok || !strings.Contains(name, "attentions") || strings.HasSuffix(name, ".norm") || strings.Contains(name, "norm") {
			continue
		}
		out, in := q.Shape[0], q.Shape[1]
		ds, us := []int{r, in}, []int{out, r}
		if len(q.Shape) == 4 {
			ds, us = []int{r, in, 1, 1}, []int{out, r, 1, 1}
		}
		down, up := randomDense(rng, ds...), randomDense(rng, us...)
		for _, t := range []*tensor.Dense{down, up} {
			for i, d := 0, t.Float32s(); i < len(d); i++ {
				d[i] *= 0.01
			}
		}
		u[lora.Flat(name)] = lora.Update{Down: down, Up: up}
		patched = append(patched, q)
	}
	return u, patched
}

// BenchmarkUNetSmallSDLoRA times the full-size small-sd UNet forward (batch 2, 64×64) without
// LoRA and with rank-8 and rank-64 LoRAs on every layer kohya's LoRAs patch (the low-rank path in
// the graph), and, for the fused alternative, the time and memory of merging the rank-8 update
// into those weights (lora.Fuse, once per request).
//
//	go test ./unet -run '^$' -bench UNetSmallSDLoRA -benchtime 2x
func BenchmarkUNetSmallSDLoRA(b *testing.B) {
	m := smallSD(b, false)
	rng := rand.New(rand.NewSource(1))
	sample := randomDense(rng, 2, 4, 64, 64)
	text := randomDense(rng, 2, 77, 768)
	ctx := context.Background()
	for _, r := range []int{0, 8, 64} {
		b.Run(fmt.Sprintf("rank%d", r), func(b *testing.B) {
			var u lora.Updates
			if r > 0 {
				var patched []weights.Request
				u, patched = syntheticLoRA(b, r)
				b.Logf("rank %d: %d layers patched", r, len(patched))
			}
			m.dropPrograms()
			start := time.Now()
			if _, err := m.ForwardLoRA(ctx, sample, 981, text, u); err != nil {
				b.Fatal(err)
			}
			b.Logf("first run (with compile) %v", time.Since(start).Round(time.Millisecond))
			cpu0 := benchutil.CPUSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.ForwardLoRA(ctx, sample, 981, text, u); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/forward")
			b.ReportMetric((benchutil.CPUSeconds()-cpu0)/float64(b.N), "cpu-s/forward")
		})
	}
	b.Run("fuse-rank8", func(b *testing.B) {
		u, patched := syntheticLoRA(b, 8)
		s := weights.NewSynthetic()
		var bytes int64
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			bytes = 0
			for _, q := range patched {
				b.StopTimer()
				w, err := s.Tensor(q.Name, q.Shape...)
				if err != nil {
					b.Fatal(err)
				}
				name := lora.Flat(strings.TrimSuffix(q.Name, ".weight"))
				l := &lora.Layer{Key: name, Down: u[name].Down, Up: u[name].Up}
				b.StartTimer()
				f, err := lora.Fuse(w, l, 1)
				if err != nil {
					b.Fatal(err)
				}
				bytes += int64(4 * f.Size())
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/fuse")
		b.ReportMetric(float64(bytes), "fusedBytes")
	})
}
