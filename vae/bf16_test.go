package vae

import (
	"context"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
)

// TestFullSizeBF16 decodes the recorded latents with the SD VAE on bf16 weights and measures
// the image's distance from the float32 reference.
func TestFullSizeBF16(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size synthetic decoder skipped under -short")
	}
	cfg, err := LoadConfig(golden.Path("configs", "vae", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDecoder(cfg, weights.NewSynthetic().View().BF16())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f := golden.MustOpen(t, golden.Path("fullsize-golden.safetensors"))
	got, err := d.Decode(context.Background(), dense(f.Must(t, "vae.latents")))
	if err != nil {
		t.Fatal(err)
	}
	golden.CheckRelRMS(t, "bf16 vae.decoded", f32(got), f.Must(t, "vae.decoded"), 2e-2)
}
