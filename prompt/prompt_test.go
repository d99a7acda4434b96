package prompt

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/tokenizer"
)

// lpwCases is the lpw part of testdata/wave3-lpw-taesd.json (a copy of ../shared/golden/wave3/cases.json).
type lpwCases struct {
	LPW struct {
		NegativePrompt string          `json:"negative_prompt"`
		NegativeParsed [][2]any        `json:"negative_parsed"`
		NegativeIDs    []int           `json:"negative_token_ids"`
		NegativeWts    []float64       `json:"negative_token_weights"`
		Cases          []lpwCase       `json:"cases"`
		E2E            json.RawMessage `json:"e2e"`
	} `json:"lpw"`
}

type lpwCase struct {
	Name            string    `json:"name"`
	Prompt          string    `json:"prompt"`
	Parsed          [][2]any  `json:"parsed"`
	NTokens         int       `json:"n_tokens"`
	Truncated       bool      `json:"truncated"`
	ChunksAlone     int       `json:"chunks_alone"`
	ChunksNegative  int       `json:"chunks_with_negative"`
	TokenIDs        []int     `json:"token_ids"`
	TokenWeights    []float64 `json:"token_weights"`
	HasWithNegative bool      `json:"-"`
}

func readCases(t testing.TB) lpwCases {
	t.Helper()
	b, err := os.ReadFile(golden.Path("wave3-lpw-taesd.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c lpwCases
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.LPW.Cases) != 6 {
		t.Fatalf("%d lpw cases, want 6", len(c.LPW.Cases))
	}
	return c
}

func segments(t testing.TB, parsed [][2]any) []Segment {
	t.Helper()
	var out []Segment
	for _, p := range parsed {
		text, ok1 := p[0].(string)
		var w float64
		ok2 := true
		switch v := p[1].(type) {
		case float64:
			w = v
		case string: // hex float from prompt-quirks.json ("inf" too)
			var err error
			if w, err = strconv.ParseFloat(v, 64); err != nil {
				ok2 = false
			}
		default:
			ok2 = false
		}
		if !ok1 || !ok2 {
			t.Fatalf("bad parsed entry %v", p)
		}
		out = append(out, Segment{text, w})
	}
	return out
}

func loadTokenizer(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(golden.Path("tiny-sd", "tokenizer"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestParseReference(t *testing.T) {
	c := readCases(t)
	check := func(name, text string, want []Segment) {
		got, err := Parse(text)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: Parse(%q)\n got %v\nwant %v", name, text, got, want)
		}
	}
	for _, cs := range c.LPW.Cases {
		check(cs.Name, cs.Prompt, segments(t, cs.Parsed))
	}
	check("negative", c.LPW.NegativePrompt, segments(t, c.LPW.NegativeParsed))
}

// TestParseQuirks checks prompts that exercise each quirk of parse_prompt_attention; the expected
// results (weights as hex floats) were made by the reference function itself.
func TestParseQuirks(t *testing.T) {
	b, err := os.ReadFile(golden.Path("prompt-quirks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Prompt string   `json:"prompt"`
		Parsed [][2]any `json:"parsed"`
		Error  string   `json:"error"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		got, err := Parse(c.Prompt)
		if c.Error != "" {
			if err == nil {
				t.Errorf("Parse(%q) = %v, want an error (reference: %s)", c.Prompt, got, c.Error)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", c.Prompt, err)
			continue
		}
		if want := segments(t, c.Parsed); !slices.Equal(got, want) {
			t.Errorf("Parse(%q)\n got %v\nwant %v", c.Prompt, got, want)
		}
	}
}

func TestTokenizeReference(t *testing.T) {
	c := readCases(t)
	tok := loadTokenizer(t)
	check := func(name, text string, ids []int, wts []float64, truncated bool) {
		w, err := Tokenize(tok, text, 225)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(w.Tokens, ids) {
			t.Errorf("%s: ids\n got %v\nwant %v", name, w.Tokens, ids)
		}
		if !slices.Equal(w.TokenWeights, wts) {
			t.Errorf("%s: weights\n got %v\nwant %v", name, w.TokenWeights, wts)
		}
		if w.Truncated != truncated {
			t.Errorf("%s: Truncated %v, want %v", name, w.Truncated, truncated)
		}
	}
	for _, cs := range c.LPW.Cases {
		if len(cs.TokenIDs) != cs.NTokens {
			t.Fatalf("%s: %d ids for n_tokens %d", cs.Name, len(cs.TokenIDs), cs.NTokens)
		}
		check(cs.Name, cs.Prompt, cs.TokenIDs, cs.TokenWeights, cs.Truncated)
	}
	check("negative", c.LPW.NegativePrompt, c.LPW.NegativeIDs, c.LPW.NegativeWts, false)
}

// checkPrepared compares one prompt's padded ids, weights and chunks with the reference tensors
// prefix.tokens, prefix.weights and prefix.chunks exactly.
func checkPrepared(t *testing.T, f *golden.File, prefix string, w Weighted) {
	t.Helper()
	if got, want := w.IDs, f.Must(t, prefix+".tokens").Ints(); !slices.Equal(got, want) {
		t.Errorf("%s.tokens\n got %v\nwant %v", prefix, got, want)
	}
	if got, want := w.Weights, f.Must(t, prefix+".weights").F32(); !slices.Equal(got, want) {
		t.Errorf("%s.weights\n got %v\nwant %v", prefix, got, want)
	}
	var chunks []int
	for _, c := range w.Chunks {
		chunks = append(chunks, c...)
	}
	if got, want := chunks, f.Must(t, prefix+".chunks").Ints(); !slices.Equal(got, want) {
		t.Errorf("%s.chunks\n got %v\nwant %v", prefix, got, want)
	}
}

func TestPrepareReference(t *testing.T) {
	c := readCases(t)
	tok := loadTokenizer(t)
	f := golden.MustOpen(t, golden.Path("wave3-lpw-taesd.safetensors"))
	for _, cs := range c.LPW.Cases {
		b, err := Prepare(tok, []string{cs.Prompt}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if b.NumChunks != cs.ChunksAlone {
			t.Errorf("%s: %d chunks, want %d", cs.Name, b.NumChunks, cs.ChunksAlone)
		}
		checkPrepared(t, f, "lpw."+cs.Name, b.Prompts[0])

		b, err = Prepare(tok, []string{cs.Prompt, c.LPW.NegativePrompt}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if b.NumChunks != cs.ChunksNegative {
			t.Errorf("%s with negative: %d chunks, want %d", cs.Name, b.NumChunks, cs.ChunksNegative)
		}
		prefix := "lpw." + cs.Name
		if _, err := f.Get(prefix + ".with_negative.tokens"); err == nil {
			prefix += ".with_negative"
		}
		checkPrepared(t, f, prefix, b.Prompts[0])
		checkPrepared(t, f, fmt.Sprintf("lpw.negative.k%d", b.NumChunks), b.Prompts[1])
	}
}

func loadEncoder(t testing.TB) *clip.TextModel {
	t.Helper()
	m, err := clip.Load(golden.Path("tiny-sd", "text_encoder"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// tol is the tolerance of an embedding (relative to max(1, max|ref|)): about 10× the largest
// error measured on the AVX-512 and AVX2 paths over the unweighted outputs and most weighted
// ones (5.1e-7). The cases whose weights scale the encoder's error further have their own.
const tol = 5e-6

// embedTols holds the tolerances of the embeddings that measure above tol/10.
var embedTols = map[string]float64{
	"lpw.explicit.embeds":               9e-6, // 8.3e-7
	"lpw.explicit.with_negative.embeds": 2e-5, // 1.4e-6
	"lpw.nested.with_negative.embeds":   1e-5, // 9.1e-7
	"lpw.less.embeds":                   2e-5, // 1.0e-6
	"lpw.mixed.embeds":                  7e-6, // 6.4e-7
}

// checkEmbed compares got with the reference name at its tolerance.
func checkEmbed(t *testing.T, f *golden.File, name string, got []float32) float64 {
	t.Helper()
	lim, ok := embedTols[name]
	if !ok {
		lim = tol
	}
	return golden.Check(t, name, got, f.Must(t, name), lim)
}

func TestEmbedReference(t *testing.T) {
	c := readCases(t)
	tok := loadTokenizer(t)
	enc := loadEncoder(t)
	f := golden.MustOpen(t, golden.Path("wave3-lpw-taesd.safetensors"))
	ctx := context.Background()
	worst := 0.0
	for _, cs := range c.LPW.Cases {
		b, err := Prepare(tok, []string{cs.Prompt}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		un, err := b.Unweighted(ctx, enc)
		if err != nil {
			t.Fatal(err)
		}
		worst = max(worst, checkEmbed(t, f, "lpw."+cs.Name+".unweighted", un.Float32s()))
		emb, err := b.Embed(ctx, enc)
		if err != nil {
			t.Fatal(err)
		}
		worst = max(worst, checkEmbed(t, f, "lpw."+cs.Name+".embeds", emb.Float32s()))

		// With the negative prompt: [prompt, negative] padded to the same k.
		emb, err = Embed(ctx, tok, enc, []string{cs.Prompt, c.LPW.NegativePrompt}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		all := emb.Float32s()
		half := len(all) / 2
		name := "lpw." + cs.Name + ".embeds"
		if _, err := f.Get("lpw." + cs.Name + ".with_negative.embeds"); err == nil {
			name = "lpw." + cs.Name + ".with_negative.embeds"
		}
		worst = max(worst, checkEmbed(t, f, name, all[:half]))
		neg := fmt.Sprintf("lpw.negative.k%d.embeds", emb.Shape()[1]/77)
		worst = max(worst, checkEmbed(t, f, neg, all[half:]))
	}
	t.Logf("largest error over all embeddings: %.3g", worst)
}

func TestOptionsAndErrors(t *testing.T) {
	tok := loadTokenizer(t)
	if _, err := Prepare(tok, nil, Options{}); err == nil {
		t.Error("Prepare with no prompts: no error")
	}
	if _, err := Prepare(tok, []string{"a"}, Options{MaxChunks: -1}); err == nil {
		t.Error("MaxChunks -1: no error")
	}
	if _, err := Prepare(tok, []string{"(a:1.2.3)"}, Options{}); err == nil {
		t.Error("(a:1.2.3): no error")
	}
	// An empty prompt is one chunk of BOS, 75 pads and EOS with weights 1.
	b, err := Prepare(tok, []string{""}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := b.Prompts[0]
	if b.NumChunks != 1 || len(w.IDs) != 77 || w.IDs[0] != tok.BOS() || w.IDs[76] != tok.EOS() || len(w.Weights) != 77 {
		t.Errorf("empty prompt: k=%d ids=%v weights=%v", b.NumChunks, w.IDs, w.Weights)
	}
	// MaxChunks 1 truncates to 75 tokens.
	long := ""
	for range 100 {
		long += "a "
	}
	b, err = Prepare(tok, []string{long}, Options{MaxChunks: 1})
	if err != nil {
		t.Fatal(err)
	}
	if b.NumChunks != 1 || !b.Prompts[0].Truncated || len(b.Prompts[0].Tokens) != 75 {
		t.Errorf("MaxChunks 1: k=%d truncated=%v tokens=%d", b.NumChunks, b.Prompts[0].Truncated, len(b.Prompts[0].Tokens))
	}
	// A weight beyond float64 is an error from the weighting, not NaN embeddings.
	enc := loadEncoder(t)
	if _, err := Embed(context.Background(), tok, enc, []string{"(a:" + nines(400) + ")"}, Options{}); err == nil {
		t.Error("an infinite weight: no error")
	}
	if err := Reweight(make([]float32, 5), make([]float32, 2), 2); err == nil {
		t.Error("Reweight with mismatched sizes: no error")
	}
}

func nines(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '9'
	}
	return string(b)
}

// FuzzParse checks that Parse never panics, that its result is never empty, that adjacent
// segments have different weights, that a prompt without syntax characters is one segment of
// weight 1, and that Prepare's shapes hold for any prompt.
func FuzzParse(f *testing.F) {
	c := readCases(f)
	for _, cs := range c.LPW.Cases {
		f.Add(cs.Prompt)
	}
	for _, s := range []string{"", "(", ")", "\\", "(a:١.٥)", "(a:1.2.3)", "[(x:2)]", "((a)", "a:b", "\xff(\xfe:1)"} {
		f.Add(s)
	}
	tok := loadTokenizer(f)
	f.Fuzz(func(t *testing.T, text string) {
		segs, err := Parse(text)
		if err != nil {
			return
		}
		if len(segs) == 0 {
			t.Fatalf("Parse(%q) is empty", text)
		}
		for i := 1; i < len(segs); i++ {
			if segs[i].Weight == segs[i-1].Weight {
				t.Fatalf("Parse(%q) = %v: adjacent equal weights", text, segs)
			}
		}
		plain := true
		for _, r := range text {
			plain = plain && !slices.Contains([]rune(`\()[]:`), r)
		}
		if plain && (len(segs) != 1 || segs[0].Text != text || segs[0].Weight != 1) {
			t.Fatalf("Parse(%q) = %v, want the text itself with weight 1", text, segs)
		}
		b, err := Prepare(tok, []string{text, "negative"}, Options{})
		if err != nil {
			t.Fatalf("Prepare(%q): %v", text, err)
		}
		k := b.NumChunks
		for _, w := range b.Prompts {
			if len(w.Tokens) > 225 || len(w.Tokens) != len(w.TokenWeights) || len(w.IDs) != 75*k+2 ||
				len(w.Weights) != 77*k || len(w.Chunks) != k {
				t.Fatalf("Prepare(%q): k=%d, %d tokens, %d weights, %d ids, %d position weights, %d chunks",
					text, k, len(w.Tokens), len(w.TokenWeights), len(w.IDs), len(w.Weights), len(w.Chunks))
			}
			for _, ch := range w.Chunks {
				if len(ch) != 77 || ch[0] != tok.BOS() || ch[76] != tok.EOS() {
					t.Fatalf("Prepare(%q): chunk %v", text, ch)
				}
			}
			for i, v := range w.TokenWeights { // every token weight sits on its token's row
				if j := i/75*77 + i%75 + 1; w.Weights[j] != float32(v) || w.Chunks[i/75][i%75+1] != w.Tokens[i] {
					t.Fatalf("Prepare(%q): token %d misplaced", text, i)
				}
			}
		}
	})
}
