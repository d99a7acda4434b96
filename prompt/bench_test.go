package prompt

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
)

// BenchmarkEmbedL14 is the prompt path's cost per chunk: a weighted prompt and a negative prompt of
// k chunks each (2k text-encoder rows of 77 tokens, as with classifier-free guidance) through
// the full-size SD 1.x text encoder on synthetic weights (testdata/configs/text_encoder), parsing,
// tokenizing and reweighting included. The diffusers path is the k=1 case without the parsing.
func BenchmarkEmbedL14(b *testing.B) {
	cfg, err := clip.LoadConfig(golden.Path("configs", "text_encoder"))
	if err != nil {
		b.Fatal(err)
	}
	enc, err := clip.New(cfg, weights.NewSynthetic().View())
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	tok := loadTokenizer(b)
	for k := 1; k <= 3; k++ {
		// About 70 tokens per clause repeat, so k clauses need k chunks.
		text := strings.Repeat("a (photograph:1.2) of an astronaut riding a horse, [blurry], ((masterpiece)), ", 3*k)
		b.Run(fmt.Sprintf("chunks=%d", k), func(b *testing.B) {
			pb, err := Prepare(tok, []string{text, text}, Options{MaxChunks: k})
			if err != nil {
				b.Fatal(err)
			}
			if pb.NumChunks != k {
				b.Fatalf("%d chunks, want %d", pb.NumChunks, k)
			}
			ctx := context.Background()
			if _, err := Embed(ctx, tok, enc, []string{text, text}, Options{MaxChunks: k}); err != nil { // compile
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := Embed(ctx, tok, enc, []string{text, text}, Options{MaxChunks: k}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(sec, "s/op")
			b.ReportMetric(sec/float64(k), "s/chunk")
		})
	}
}

// BenchmarkPrepare is the text side alone (parse, tokenize, pad) of a 3-chunk prompt.
func BenchmarkPrepare(b *testing.B) {
	tok := loadTokenizer(b)
	text := strings.Repeat("a (photograph:1.2) of an astronaut riding a horse, [blurry], ((masterpiece)), ", 9)
	for range b.N {
		if _, err := Prepare(tok, []string{text, "blurry, (low quality:1.4)"}, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
