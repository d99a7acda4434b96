package vae

import (
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// TestDecoderPeakBreakdown logs which intermediate values are alive at the decoder's memory
// peak at latent size 64×64 (a 512×512 image): the layer that sets the peak and what it keeps.
// It compiles the program only (synthetic weights, nothing is run).
func TestDecoderPeakBreakdown(t *testing.T) {
	cfg, err := LoadConfig(golden.Path("configs", "vae", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDecoder(cfg, weights.NewSynthetic().View())
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.runner.Program(tensor.Shape{1, cfg.LatentChannels, 64, 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("64×64 latents: peak %.1f MiB of intermediates, arena %.1f MiB; alive at the peak:",
		float64(p.PeakBytes())/(1<<20), float64(p.BufferBytes())/(1<<20))
	for _, l := range p.PeakValues() {
		t.Log(l)
	}
}
