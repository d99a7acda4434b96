package vae

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/benchutil"
	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

func loadTinyTAESD(t testing.TB) *Tiny {
	t.Helper()
	m, err := LoadTiny(golden.Path("taesd-tiny"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestTAESDDecode decodes e2e.pndm's final latents with the tiny random TAESD
// (testdata/taesd-tiny) and compares with AutoencoderTiny.decode (wave3 reference).
func TestTAESDDecode(t *testing.T) {
	m := loadTinyTAESD(t)
	f := golden.MustOpen(t, golden.Path("wave3-lpw-taesd.safetensors"))
	got, err := m.Decode(context.Background(), dense(f.Must(t, "taesd.dec.latents")))
	if err != nil {
		t.Fatal(err)
	}
	ref := f.Must(t, "taesd.dec.sample")
	if !got.Shape().Eq(ref.Shape) {
		t.Fatalf("shape %v, want %v", got.Shape(), ref.Shape)
	}
	golden.Check(t, "taesd.dec.sample", got.Float32s(), ref, 1e-5) // 9.6e-7 measured
}

// TestTAESDEncode encodes e2e.pndm's 8-bit image as the pipelines preprocess it and compares with
// AutoencoderTiny.encode, then the 8-bit latents of AutoencoderTiny.forward (scale_latents).
func TestTAESDEncode(t *testing.T) {
	m := loadTinyTAESD(t)
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	img := f.Must(t, "e2e.pndm.image_u8") // H×W×3
	h, w := img.Shape[0], img.Shape[1]
	x := make([]float32, 3*h*w)
	for c := range 3 {
		for i := range h * w {
			x[c*h*w+i] = 2*(float32(img.Data[i*3+c])/255) - 1
		}
	}
	got, err := m.Encode(context.Background(), tensor.New(tensor.WithShape(1, 3, h, w), tensor.WithBacking(x)))
	if err != nil {
		t.Fatal(err)
	}
	w3 := golden.MustOpen(t, golden.Path("wave3-lpw-taesd.safetensors"))
	golden.Check(t, "taesd.enc.latents", got.Float32s(), w3.Must(t, "taesd.enc.latents"), 6e-6) // 5.0e-7 measured

	u8 := w3.Must(t, "taesd.fwd.latents_u8")
	cfg := m.Config()
	off := 0
	for i, v := range got.Float32s() {
		s := math.Round(255 * math.Min(1, math.Max(0, float64(v)/(2*cfg.LatentMagnitude)+cfg.LatentShift)))
		if d := math.Abs(s - u8.Data[i]); d > 1 {
			t.Errorf("latents_u8[%d] = %v, want %v", i, s, u8.Data[i])
		} else if d > 0 {
			off++
		}
	}
	t.Logf("taesd.fwd.latents_u8: %d of %d values differ by one level", off, len(u8.Data))
}

// TestTAESDManifest builds the real TAESD's configuration (testdata/configs/taesd) on synthetic
// weights and checks that it reads exactly the tensors of the real checkpoint's manifest.
func TestTAESDManifest(t *testing.T) {
	cfg, err := LoadTinyConfig(golden.Path("configs", "taesd"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := weights.ReadManifest(golden.Path("manifests", "taesd.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s := weights.NewSynthetic()
	if _, err := NewTiny(cfg, s.View()); err != nil {
		t.Fatal(err)
	}
	params := 0
	for _, r := range want {
		n := 1
		for _, d := range r.Shape {
			n *= d
		}
		params += n
	}
	t.Logf("%d tensors, %d parameters", len(want), params)
	if diff := weights.DiffManifest(want, s.Requested()); diff != "" {
		t.Errorf("requested tensors differ from the manifest:\n%s", diff)
	}
	if cfg.UpscaleFactor() != 8 || cfg.DownscaleFactor() != 8 || cfg.ScalingFactor != 1 {
		t.Errorf("factors %d, %d, scaling %v", cfg.UpscaleFactor(), cfg.DownscaleFactor(), cfg.ScalingFactor)
	}
}

func TestTAESDErrors(t *testing.T) {
	m := loadTinyTAESD(t)
	ctx := context.Background()
	if _, err := m.Decode(ctx, tensor.New(tensor.WithShape(1, 3, 4, 4), tensor.WithBacking(make([]float32, 48)))); err == nil {
		t.Error("3-channel latents: no error")
	}
	if _, err := m.Encode(ctx, tensor.New(tensor.WithShape(1, 3, 12, 16), tensor.WithBacking(make([]float32, 3*12*16)))); err == nil ||
		!strings.Contains(err.Error(), "multiples of 8") {
		t.Errorf("12×16 image: %v", err)
	}
	cfg := DefaultTinyConfig()
	cfg.ActFn = "silu"
	if _, err := NewTiny(cfg, weights.NewSynthetic().View()); err == nil || !strings.Contains(err.Error(), "act_fn") {
		t.Errorf("act_fn silu: %v", err)
	}
	if _, err := LoadTiny(golden.Path("tiny-sd", "vae")); err == nil || !strings.Contains(err.Error(), "AutoencoderTiny") {
		t.Errorf("an AutoencoderKL folder: %v", err)
	}
	m2, err := LoadTiny(golden.Path("taesd-tiny"))
	if err != nil {
		t.Fatal(err)
	}
	m2.Close()
	if _, err := m2.Decode(ctx, tensor.New(tensor.WithShape(1, 4, 2, 2), tensor.WithBacking(make([]float32, 16)))); !errors.Is(err, ErrClosed) {
		t.Errorf("Decode after Close: %v, want ErrClosed", err)
	}
}

// tinyDecodeFLOPs counts the multiply-adds (×2) of the convolutions of one TAESD decode.
func tinyDecodeFLOPs(cfg TinyConfig, h, w int) float64 {
	var fl float64
	conv := func(in, out int) { fl += 2 * float64(in*out*9) * float64(h*w) }
	boc := cfg.DecoderBlockOutChannels
	conv(cfg.LatentChannels, boc[0])
	for i, n := range cfg.NumDecoderBlocks {
		for range 3 * n {
			conv(boc[i], boc[i])
		}
		if i < len(boc)-1 {
			h, w = 2*h, 2*w
			conv(boc[i], boc[i])
		} else {
			conv(boc[i], cfg.OutChannels)
		}
	}
	return fl
}

// BenchmarkTAESDDecode decodes one latent with the real TAESD configuration on synthetic weights:
// 64×64 latents are a 512×512 image. Run with -benchtime=1x -count=3.
func BenchmarkTAESDDecode(b *testing.B) {
	cfg, err := LoadTinyConfig(golden.Path("configs", "taesd"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewTiny(cfg, weights.NewSynthetic().View())
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []int{32, 64} {
		b.Run(fmt.Sprintf("%dx%d", s, s), func(b *testing.B) {
			x := tensor.New(tensor.WithShape(1, 4, s, s), tensor.WithBacking(make([]float32, 4*s*s)))
			for i := range x.Float32s() {
				x.Float32s()[i] = float32(i%17)/4 - 2
			}
			peak, err := m.PeakBytes(s, s)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.Decode(context.Background(), x); err != nil { // compile outside the timing
				b.Fatal(err)
			}
			b.ResetTimer()
			cpu0 := benchutil.CPUSeconds()
			for i := 0; i < b.N; i++ {
				if _, err := m.Decode(context.Background(), x); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec, "s/op")
			// CPU seconds per decode: on a busy machine, cpu-s/op ÷ cores is what idle cores would take.
			b.ReportMetric((benchutil.CPUSeconds()-cpu0)/float64(b.N), "cpu-s/op")
			b.ReportMetric(tinyDecodeFLOPs(cfg, s, s)/sec/1e9, "GFLOP/s")
			b.ReportMetric(float64(peak)/1e6, "PeakMB")
			b.ReportMetric(float64(peakRSS())/1e6, "peakRSS-MB")
		})
	}
}
