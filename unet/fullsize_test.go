package unet

import (
	"context"
	"testing"
	"time"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
)

func paramCount(reqs []weights.Request) (n int64) {
	for _, r := range reqs {
		p := int64(1)
		for _, d := range r.Shape {
			p *= int64(d)
		}
		n += p
	}
	return n
}

func smallSDConfig(t testing.TB) Config {
	cfg, err := LoadConfig(golden.Path("configs", "unet", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestManifestSmallSD builds the real small-sd config and compares the tensors it asks for
// with the checkpoint's manifest.
func TestManifestSmallSD(t *testing.T) {
	cfg := smallSDConfig(t)
	want, err := weights.ReadManifest(golden.Path("manifests", "unet-small-sd.txt"))
	if err != nil {
		t.Fatal(err)
	}
	src := weights.NewZeros()
	if _, err := New(cfg, src.View()); err != nil {
		t.Fatal(err)
	}
	if d := weights.DiffManifest(want, src.Requested()); d != "" {
		t.Fatalf("requested tensors differ from the manifest:\n%s", d)
	}
	n := paramCount(src.Requested())
	t.Logf("small-sd UNet: %d tensors, %d parameters", len(src.Requested()), n)
	if n != 579384964 {
		t.Errorf("parameter count %d, want 579384964", n)
	}
}

// TestFullSizeSynthetic runs the full-size small-sd UNet with the synthetic weights of
// testdata/SYNTHETIC.md on the recorded 2×4×32×32 sample at t = 981.
func TestFullSizeSynthetic(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size UNet (2.3 GB of synthetic weights) skipped under -short")
	}
	f := golden.MustOpen(t, golden.Path("fullsize-golden.safetensors"))
	cfg := smallSDConfig(t)
	start := time.Now()
	store := weights.NewSynthetic()
	m, err := New(cfg, store.View())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built with synthetic weights in %v", time.Since(start).Round(time.Millisecond))
	want, err := weights.ReadManifest(golden.Path("manifests", "unet-small-sd.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if d := weights.DiffManifest(want, store.Requested()); d != "" {
		t.Fatalf("requested tensors differ from the manifest:\n%s", d)
	}
	ref := f.Must(t, "unet.check.conv_in_weight_first8")
	w0, _ := store.Tensor("conv_in.weight", 320, 4, 3, 3)
	golden.Check(t, "conv_in.weight[:8]", w0.Float32s()[:8], ref, 1e-7)

	var taps []string
	for _, name := range f.Names() {
		if len(name) > len("unet.tap.") && name[:len("unet.tap.")] == "unet.tap." {
			taps = append(taps, name[len("unet.tap."):])
		}
	}
	start = time.Now()
	got, err := m.ForwardTaps(context.Background(), dense(f.Must(t, "unet.sample")), 981,
		dense(f.Must(t, "unet.encoder_hidden_states")), append(taps, "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full-size forward (2×4×32×32, with %d taps) took %v", len(taps), time.Since(start).Round(time.Millisecond))
	// Each tap's tolerance is about 10× the largest error measured on the AVX-512 and AVX2 paths
	// (given beside it; with Winograd on the 32×32 layers since 22b8731).
	fullTols := map[string]float64{
		"time_embedding": 6e-5, // 5.0e-6
		"down_blocks.0":  4e-5, // 3.2e-6
		"down_blocks.1":  4e-5, // 3.5e-6
		"down_blocks.2":  5e-5, // 4.9e-6
		"down_blocks.3":  5e-5, // 4.8e-6
		"mid_block":      5e-5, // 4.2e-6
		"up_blocks.0":    5e-5, // 4.4e-6
	}
	for _, name := range taps {
		lim, ok := fullTols[name]
		if !ok {
			t.Errorf("tap %s: no tolerance in fullTols", name)
		}
		golden.Check(t, "unet.tap."+name, got[name].Float32s(), f.Must(t, "unet.tap."+name), lim)
	}
	golden.Check(t, "unet.out_t981", got["out"].Float32s(), f.Must(t, "unet.out_t981"), 6e-5) // 5.8e-6
}
