package tokenizer

import (
	"strings"
	"testing"
)

// prompt75 builds a typical prompt of exactly 75 tokens (77 ids with BOS and
// EOS) with the real vocabulary.
func prompt75(b *testing.B, tk *Tokenizer) string {
	words := strings.Fields("a photograph of an astronaut riding a horse on the moon, highly detailed, " +
		"8k uhd, dslr, soft lighting, high quality, film grain, Fujifilm XT3, masterpiece, trending on artstation, " +
		"by greg rutkowski and alphonse mucha, cinematic composition, volumetric light, octane render, " +
		"ultra realistic, intricate details, sharp focus, golden hour, depth of field, bokeh, vivid colours, " +
		"award winning photograph, wide angle lens, dramatic sky, stars, earth rising over the horizon, dust, " +
		"reflections on the visor, a flag, footprints in the regolith, long shadows, serene mood, photorealistic")
	for n := len(words); n > 0; n-- {
		p := strings.Join(words[:n], " ")
		if len(tk.Encode(p)) <= 77 {
			if got := len(tk.Encode(p)) - 2; got != 75 {
				b.Logf("prompt has %d tokens", got)
			}
			return p
		}
	}
	b.Fatal("no prompt")
	return ""
}

func BenchmarkLoad(b *testing.B) {
	loadClip(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(clipDir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode75Cold encodes a 75-token prompt with an empty BPE cache.
func BenchmarkEncode75Cold(b *testing.B) {
	tk := loadClip(b)
	p := prompt75(b, tk)
	b.ReportAllocs()
	for b.Loop() {
		tk.cache.reset()
		tk.EncodePadded(p, 77)
	}
	b.ReportMetric(75*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkEncode75Warm encodes a 75-token prompt whose words are all cached.
func BenchmarkEncode75Warm(b *testing.B) {
	tk := loadClip(b)
	p := prompt75(b, tk)
	tk.EncodePadded(p, 77)
	b.ReportAllocs()
	for b.Loop() {
		tk.EncodePadded(p, 77)
	}
	b.ReportMetric(75*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
