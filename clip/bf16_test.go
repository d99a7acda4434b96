package clip

import (
	"context"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
)

// TestFullSizeSyntheticBF16 runs the full-size text encoder with bf16 weights on the recorded
// prompts and measures its distance from the float32 reference.
func TestFullSizeSyntheticBF16(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size CLIP text encoder skipped under -short")
	}
	f := golden.MustOpen(t, golden.Path("fullsize-golden.safetensors"))
	m, err := New(l14Config(t), weights.NewSynthetic().View().BF16())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, err := m.Encode(context.Background(), rows(f.Must(t, "clip.input_ids")))
	if err != nil {
		t.Fatal(err)
	}
	golden.CheckRelRMS(t, "bf16 clip.last_hidden_state", got.Float32s(), f.Must(t, "clip.last_hidden_state"), 2e-2)
}
