package unet

import (
	"context"
	"testing"
	"time"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
)

// TestFullSizeSyntheticBF16 runs the full-size small-sd UNet with bf16 weights (and, where
// AVX512-BF16 pays, bf16 matrix products) on the recorded sample and measures its distance from the
// float32 reference: the bar is 2e-2 relative RMS.
func TestFullSizeSyntheticBF16(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size UNet (1.2 GB of bf16 synthetic weights) skipped under -short")
	}
	f := golden.MustOpen(t, golden.Path("fullsize-golden.safetensors"))
	store := weights.NewSynthetic()
	m, err := New(smallSDConfig(t), store.View().BF16())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	start := time.Now()
	got, err := m.Forward(context.Background(), dense(f.Must(t, "unet.sample")), 981, dense(f.Must(t, "unet.encoder_hidden_states")))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bf16 forward (2×4×32×32) took %v; weights held %.0f MB", time.Since(start).Round(time.Millisecond), float64(store.LoadedBytes())/1e6)
	golden.CheckRelRMS(t, "bf16 unet.out_t981", got.Float32s(), f.Must(t, "unet.out_t981"), 2e-2)
}
