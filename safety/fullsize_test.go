package safety

import (
	"bufio"
	"context"
	"image"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// l14 returns the real checker's config (CLIP ViT-L/14 vision tower at 224) and image processor.
func l14(t testing.TB) (Config, ProcessorConfig) {
	t.Helper()
	cfg, err := LoadConfig(golden.Path("configs", "safety_checker"))
	if err != nil {
		t.Fatal(err)
	}
	proc, err := LoadProcessorConfig(golden.Path("configs", "feature_extractor"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, proc
}

// TestManifestL14 builds the real safety checker's config and compares the tensors it asks for
// with the checkpoint's manifest.
func TestManifestL14(t *testing.T) {
	want, err := weights.ReadManifest(golden.Path("manifests", "safety-checker-l14.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, proc := l14(t)
	src := weights.NewZeros()
	if _, err := New(cfg, proc, src.View()); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, r := range src.Requested() {
		p := int64(1)
		for _, d := range r.Shape {
			p *= int64(d)
		}
		n += p
	}
	if d := weights.DiffManifest(want, src.Requested()); d != "" {
		t.Fatalf("requested tensors differ from the manifest:\n%s", d)
	}
	t.Logf("safety checker L/14: %d tensors, %d parameters", len(src.Requested()), n)
	if len(src.Requested()) != 396 || n != 303981588 {
		t.Errorf("%d tensors, %d parameters; want 396 and 303981588", len(src.Requested()), n)
	}
}

// flops is the cost of one image through the vision tower and projection: the patch
// convolution, per layer the four attention projections, QKᵀ and PV, and the MLP.
func flops(cfg Config) float64 {
	v := cfg.VisionConfig
	t, d, i := float64(v.NumPositions()), float64(v.HiddenSize), float64(v.IntermediateSize)
	patch := 2 * (t - 1) * d * float64(v.NumChannels*v.PatchSize*v.PatchSize)
	layer := 8*t*d*d + 4*t*d*i + 4*t*t*d
	return patch + float64(v.NumHiddenLayers)*layer + 2*d*float64(cfg.ProjectionDim)
}

func synthetic(t testing.TB) (*Checker, *tensor.Dense) {
	cfg, proc := l14(t)
	man, err := weights.ReadManifest(golden.Path("manifests", "safety-checker-l14.txt"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := weights.NewSyntheticFromManifest(man)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, proc, store.View())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := store.CheckAllUsed(); err != nil {
		t.Fatal(err)
	}
	img := nrgba(make([]uint8, 512*512*3), 512, 512)
	for i := range img.Pix {
		if i%4 != 3 {
			img.Pix[i] = uint8(i * 2654435761 >> 24)
		}
	}
	x, err := c.Preprocess(img)
	if err != nil {
		t.Fatal(err)
	}
	return c, x
}

// TestFullSizeSynthetic runs the full-size checker (ViT-L/14, synthetic weights) on one
// 512×512 picture. There is no reference output for these weights: it checks that the tower
// builds from the manifest and gives finite embeddings.
func TestFullSizeSynthetic(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size safety checker (1.2 GB of synthetic weights) skipped under -short")
	}
	c, x := synthetic(t)
	start := time.Now()
	pooled, embeds, err := c.Embed(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full-size forward (one 224×224 image, %.0f GFLOP) took %v", flops(c.cfg)/1e9, time.Since(start).Round(time.Millisecond))
	for _, v := range append(pooled.Float32s(), embeds.Float32s()...) {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("non-finite output %v", v)
		}
	}
	if s := embeds.Shape(); s[0] != 1 || s[1] != 768 {
		t.Errorf("image_embeds shape %v, want (1, 768)", s)
	}
	if _, err := c.Judge(embeds.Float32s()); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSafetyCheckerL14 runs the full-size checker (synthetic weights) on one 512×512
// image: preprocessing, the ViT-L/14 tower, the projection and the concept scores.
func BenchmarkSafetyCheckerL14(b *testing.B) {
	c, x := synthetic(b)
	ctx := context.Background()
	img := nrgba(make([]uint8, 512*512*3), 512, 512)
	if _, _, err := c.Embed(ctx, x); err != nil { // compile and allocate buffers
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Filter(ctx, []*image.NRGBA{img}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(sec, "s/image")
	b.ReportMetric(flops(c.cfg)/sec/1e9, "GFLOP/s")
	b.ReportMetric(peakRSS(), "peakRSS-bytes")
}

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
