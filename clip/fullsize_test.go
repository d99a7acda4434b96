package clip

import (
	"context"
	"testing"
	"time"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
)

func l14Config(t testing.TB) Config {
	t.Helper()
	cfg, err := LoadConfig(golden.Path("configs", "text_encoder", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestManifestL14 builds the real SD 1.x text encoder config and compares the tensors it asks
// for with the checkpoint's manifest (which does not list the position_ids buffer).
func TestManifestL14(t *testing.T) {
	want, err := weights.ReadManifest(golden.Path("manifests", "clip-text-l14.txt"))
	if err != nil {
		t.Fatal(err)
	}
	src := weights.NewZeros()
	if _, err := New(l14Config(t), src.View()); err != nil {
		t.Fatal(err)
	}
	if d := weights.DiffManifest(want, src.Requested()); d != "" {
		t.Fatalf("requested tensors differ from the manifest:\n%s", d)
	}
	var n int64
	for _, r := range src.Requested() {
		p := int64(1)
		for _, d := range r.Shape {
			p *= int64(d)
		}
		n += p
	}
	t.Logf("CLIP ViT-L/14 text: %d tensors, %d parameters", len(src.Requested()), n)
	if n != 123060480 {
		t.Errorf("parameter count %d, want 123060480", n)
	}
}

// TestFullSizeSynthetic runs the full-size text encoder with the synthetic weights of
// testdata/SYNTHETIC.md on the two recorded prompts.
func TestFullSizeSynthetic(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size CLIP text encoder (490 MB of synthetic weights) skipped under -short")
	}
	f := golden.MustOpen(t, golden.Path("fullsize-golden.safetensors"))
	start := time.Now()
	store := weights.NewSynthetic()
	m, err := New(l14Config(t), store.View())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built with synthetic weights in %v", time.Since(start).Round(time.Millisecond))
	want, err := weights.ReadManifest(golden.Path("manifests", "clip-text-l14.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if d := weights.DiffManifest(want, store.Requested()); d != "" {
		t.Fatalf("requested tensors differ from the manifest:\n%s", d)
	}
	golden.Check(t, "token_embedding[:8]", m.Embeddings.TokenEmbedding.Weight.T.Float32s()[:8],
		f.Must(t, "clip.check.token_embedding_first8"), 1e-7)

	start = time.Now()
	got, err := m.Encode(context.Background(), rows(f.Must(t, "clip.input_ids")))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full-size forward (2×77) took %v", time.Since(start).Round(time.Millisecond))
	golden.Check(t, "clip.last_hidden_state", got.Float32s(), f.Must(t, "clip.last_hidden_state"), 9e-6) // 8.9e-7 measured on AVX-512 and AVX2
}
