package vae

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/benchutil"
	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// decodeFLOPs counts the multiply-adds (×2) of one sample's decode at latent size h×w:
// convolutions, the attention's projections and its two matrix products. Norms, activations
// and additions are left out (well under 1%).
func decodeFLOPs(cfg Config, h, w int) float64 {
	var fl float64
	conv := func(in, out, k, hh, ww int) { fl += 2 * float64(in*out*k*k) * float64(hh*ww) }
	resnet := func(in, out, hh, ww int) {
		conv(in, out, 3, hh, ww)
		conv(out, out, 3, hh, ww)
		if in != out {
			conv(in, out, 1, hh, ww)
		}
	}
	boc, lat := cfg.BlockOutChannels, cfg.LatentChannels
	top := boc[len(boc)-1]
	conv(lat, lat, 1, h, w)
	conv(lat, top, 3, h, w)
	resnet(top, top, h, w)
	n := float64(h * w)
	fl += 4*2*n*float64(top*top) + 2*2*n*n*float64(top)
	resnet(top, top, h, w)
	out := top
	for i := range boc {
		in := out
		out = boc[len(boc)-1-i]
		for j := 0; j <= cfg.LayersPerBlock; j++ {
			c := out
			if j == 0 {
				c = in
			}
			resnet(c, out, h, w)
		}
		if i != len(boc)-1 {
			h, w = 2*h, 2*w
			conv(out, out, 3, h, w)
		}
	}
	conv(boc[0], cfg.OutChannels, 3, h, w)
	return fl
}

// peakRSS returns VmHWM from /proc/self/status in bytes (0 where unavailable).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// BenchmarkDecode decodes one latent with the SD VAE (testdata/configs/vae) on synthetic
// weights: 64×64 is a 512×512 image. One untimed decode warms up first. Run with
// -benchtime=1x -count=3.
func BenchmarkDecode(b *testing.B) { benchDecode(b, weights.NewSynthetic().View()) }

// BenchmarkDecodeBF16 is BenchmarkDecode with bf16 weights (pipeline.BF16): bf16 convolutions
// where the CPU has AVX512-BF16 and it pays (kernels.BF16Status).
func BenchmarkDecodeBF16(b *testing.B) { benchDecode(b, weights.NewSynthetic().View().BF16()) }

func benchDecode(b *testing.B, w weights.View) {
	cfg, err := LoadConfig(golden.Path("configs", "vae", "config.json"))
	if err != nil {
		b.Fatal(err)
	}
	d, err := NewDecoder(cfg, w)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []int{32, 64} {
		b.Run(fmt.Sprintf("%dx%d", s, s), func(b *testing.B) {
			x := tensor.New(tensor.WithShape(1, cfg.LatentChannels, s, s), tensor.WithBacking(make([]float32, cfg.LatentChannels*s*s)))
			for i := range x.Float32s() {
				x.Float32s()[i] = float32(i%17)/8 - 1
			}
			peak, err := d.PeakBytes(s, s)
			if err != nil {
				b.Fatal(err)
			}
			// Warm up: the first decode allocates the program's buffers and faults in the
			// weights; the timed ones measure the steady state.
			if _, err := d.Decode(context.Background(), x); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			cpu0 := benchutil.CPUSeconds()
			for i := 0; i < b.N; i++ {
				if _, err := d.Decode(context.Background(), x); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec, "s/op")
			// CPU time (all threads): the work of a decode when other processes share the cores.
			b.ReportMetric((benchutil.CPUSeconds()-cpu0)/float64(b.N), "cpu-s/op")
			b.ReportMetric(decodeFLOPs(cfg, s, s)/sec/1e9, "GFLOP/s")
			b.ReportMetric(float64(peak)/1e6, "PeakMB")
			b.ReportMetric(float64(peakRSS())/1e6, "peakRSS-MB")
		})
	}
}

func TestDecodeFLOPs(t *testing.T) {
	cfg, err := LoadConfig(golden.Path("configs", "vae", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	g := decodeFLOPs(cfg, 64, 64) / 1e9
	t.Logf("SD VAE decode of a 64×64 latent: %.0f GFLOP", g)
	if g < 2400 || g > 2600 {
		t.Errorf("%.0f GFLOP, DESIGN.md says 2515", g)
	}
}

// encodeFLOPs counts the multiply-adds (×2) of one image's encode at size hh×ww, as
// decodeFLOPs does for the decoder.
func encodeFLOPs(cfg Config, hh, ww int) float64 {
	var fl float64
	conv := func(in, out, k, h, w int) { fl += 2 * float64(in*out*k*k) * float64(h*w) }
	resnet := func(in, out, h, w int) {
		conv(in, out, 3, h, w)
		conv(out, out, 3, h, w)
		if in != out {
			conv(in, out, 1, h, w)
		}
	}
	boc, lat := cfg.BlockOutChannels, cfg.LatentChannels
	h, w := hh, ww
	conv(cfg.InChannels, boc[0], 3, h, w)
	out := boc[0]
	for i := range boc {
		in := out
		out = boc[i]
		for j := 0; j < cfg.LayersPerBlock; j++ {
			c := out
			if j == 0 {
				c = in
			}
			resnet(c, out, h, w)
		}
		if i != len(boc)-1 {
			h, w = h/2, w/2
			conv(out, out, 3, h, w)
		}
	}
	top := boc[len(boc)-1]
	resnet(top, top, h, w)
	n := float64(h * w)
	fl += 4*2*n*float64(top*top) + 2*2*n*n*float64(top)
	resnet(top, top, h, w)
	conv(top, 2*lat, 3, h, w)
	conv(2*lat, 2*lat, 1, h, w)
	return fl
}

// BenchmarkEncode encodes one image with the SD VAE encoder (testdata/configs/vae) on
// synthetic weights of the shapes testdata/manifests/vae-sd.txt lists: 512×512 is what img2img
// and inpainting encode for a 512×512 image. It warms up (compiles) before timing. Run alone:
//
//	go test ./vae -run '^$' -bench Encode/512x512 -benchtime 1x -count 3
func BenchmarkEncode(b *testing.B) {
	cfg, err := LoadConfig(golden.Path("configs", "vae", "config.json"))
	if err != nil {
		b.Fatal(err)
	}
	manifest, err := weights.ReadManifest(golden.Path("manifests", "vae-sd.txt"))
	if err != nil {
		b.Fatal(err)
	}
	s, err := weights.NewSyntheticFromManifest(manifest)
	if err != nil {
		b.Fatal(err)
	}
	e, err := NewEncoder(cfg, s.View())
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{256, 512} {
		b.Run(fmt.Sprintf("%dx%d", size, size), func(b *testing.B) {
			x := tensor.New(tensor.WithShape(1, cfg.InChannels, size, size), tensor.WithBacking(make([]float32, cfg.InChannels*size*size)))
			for i := range x.Float32s() {
				x.Float32s()[i] = float32(i%23)/11 - 1
			}
			peak, err := e.PeakBytes(size, size)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Encode(context.Background(), x); err != nil { // warm up: weights packed, buffers made
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := e.Encode(context.Background(), x); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec, "s/op")
			b.ReportMetric(encodeFLOPs(cfg, size, size)/sec/1e9, "GFLOP/s")
			b.ReportMetric(float64(peak)/1e6, "PeakMB")
			b.ReportMetric(float64(peakRSS())/1e6, "peakRSS-MB")
		})
	}
}

func TestEncodeFLOPs(t *testing.T) {
	cfg, err := LoadConfig(golden.Path("configs", "vae", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	g := encodeFLOPs(cfg, 512, 512) / 1e9
	t.Logf("SD VAE encode of a 512×512 image: %.0f GFLOP", g)
	if g < 1000 || g > 1200 {
		t.Errorf("%.0f GFLOP, expected about 1117 (counted by hand from the SD VAE encoder)", g)
	}
}

// BenchmarkDecodeFormats alternates 64×64 decodes with fp32 and bf16 weights in one process, one
// of each per iteration, so that other work on the machine weighs on both alike, and reports
// each format's median and best CPU seconds and median wall seconds per decode.
//
//	go test ./vae -run '^$' -bench DecodeFormats -benchtime 3x
func BenchmarkDecodeFormats(b *testing.B) {
	cfg, err := LoadConfig(golden.Path("configs", "vae", "config.json"))
	if err != nil {
		b.Fatal(err)
	}
	names := []string{"fp32", "bf16"}
	var ds []*Decoder
	for _, w := range []weights.View{weights.NewSynthetic().View(), weights.NewSynthetic().View().BF16()} {
		d, err := NewDecoder(cfg, w)
		if err != nil {
			b.Fatal(err)
		}
		ds = append(ds, d)
	}
	x := tensor.New(tensor.WithShape(1, cfg.LatentChannels, 64, 64), tensor.WithBacking(make([]float32, cfg.LatentChannels*64*64)))
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(i%17)/8 - 1
	}
	benchutil.Alternate(b, names, "decode", func(f int) error {
		_, err := ds[f].Decode(context.Background(), x)
		return err
	})
}
