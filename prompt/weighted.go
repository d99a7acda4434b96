package prompt

import (
	"context"
	"errors"
	"fmt"
	"math"

	"gorgonia.org/tensor"
)

// Tokenizer is what the prompt path needs of a CLIP tokenizer; *tokenizer.Tokenizer has it.
type Tokenizer interface {
	// Encode returns BOS, the token ids of text and EOS, without truncation.
	Encode(text string) []int
	BOS() int
	EOS() int
	Pad() int
}

// Encoder is a text encoder: ids (rows of equal length) → last hidden states (rows×length×dim).
// *clip.TextModel has it.
type Encoder interface {
	Encode(ctx context.Context, ids [][]int) (*tensor.Dense, error)
}

// DefaultMaxChunks is lpw_stable_diffusion's max_embeddings_multiples: prompts are cut to
// 3 chunks of 75 tokens.
const DefaultMaxChunks = 3

// DefaultChunkLength is CLIP's model_max_length: 75 tokens plus BOS and EOS.
const DefaultChunkLength = 77

// Options set the chunking. Zero values mean the defaults.
type Options struct {
	// MaxChunks is the most chunks a prompt may use (max_embeddings_multiples, default 3); the
	// tokens beyond MaxChunks·(ChunkLength−2) are dropped.
	MaxChunks int
	// ChunkLength is the text encoder's length (model_max_length, default 77).
	ChunkLength int
}

func (o Options) withDefaults() (Options, error) {
	if o.MaxChunks == 0 {
		o.MaxChunks = DefaultMaxChunks
	}
	if o.ChunkLength == 0 {
		o.ChunkLength = DefaultChunkLength
	}
	if o.MaxChunks < 1 {
		return o, fmt.Errorf("prompt: Options.MaxChunks %d is less than 1", o.MaxChunks)
	}
	if o.ChunkLength < 3 {
		return o, fmt.Errorf("prompt: Options.ChunkLength %d is less than 3", o.ChunkLength)
	}
	return o, nil
}

// Weighted is one prompt made ready for the text encoder.
type Weighted struct {
	// Segments are the parsed prompt (Parse).
	Segments []Segment
	// Tokens are the token ids of the segments, each segment tokenized on its own, and
	// TokenWeights their weights (the segment's); Truncated says tokens were dropped.
	Tokens       []int
	TokenWeights []float64
	Truncated    bool
	// IDs are the padded ids: BOS, Tokens, pad ids up to k·(L−2) tokens, EOS (k chunks of length L).
	IDs []int
	// Weights are the k·L per-position weights as float32: per chunk 1 (BOS), the chunk's token
	// weights, 1 (EOS); padding positions 1.
	Weights []float32
	// Chunks are the k rows of L ids the text encoder sees, each starting with BOS and ending
	// with EOS.
	Chunks [][]int
}

// Batch is several prompts padded to the same number of chunks, as the prompt and the negative
// prompt of classifier-free guidance must be.
type Batch struct {
	Prompts     []Weighted
	NumChunks   int // k
	ChunkLength int // L
}

// Tokenize parses text and tokenizes it as lpw_stable_diffusion's get_prompts_with_weights
// does: every segment is tokenized on its own (tok.Encode without its BOS and EOS), so words and
// BPE merges never span segments, and each token gets its segment's weight. At most maxTokens
// tokens are kept.
func Tokenize(tok Tokenizer, text string, maxTokens int) (Weighted, error) {
	segs, err := Parse(text)
	if err != nil {
		return Weighted{}, err
	}
	w := Weighted{Segments: segs}
	for _, s := range segs {
		ids := tok.Encode(s.Text)
		ids = ids[1 : len(ids)-1]
		w.Tokens = append(w.Tokens, ids...)
		for range ids {
			w.TokenWeights = append(w.TokenWeights, s.Weight)
		}
		if len(w.Tokens) > maxTokens { // the reference stops reading segments here too
			break
		}
	}
	if len(w.Tokens) > maxTokens {
		w.Truncated = true
		w.Tokens, w.TokenWeights = w.Tokens[:maxTokens], w.TokenWeights[:maxTokens]
	}
	return w, nil
}

// Prepare tokenizes the prompts and pads them all to the same number of chunks k: the fewest
// that hold the longest prompt, at least 1 and at most opts.MaxChunks (get_weighted_text_embeddings
// with no_boseos_middle=False, its default). Pass the negative prompt with the prompt so both get
// the same k.
func Prepare(tok Tokenizer, prompts []string, opts Options) (*Batch, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(prompts) == 0 {
		return nil, errors.New("prompt: no prompts")
	}
	inner := o.ChunkLength - 2
	b := &Batch{ChunkLength: o.ChunkLength, Prompts: make([]Weighted, len(prompts))}
	longest := 0
	for i, text := range prompts {
		if b.Prompts[i], err = Tokenize(tok, text, o.MaxChunks*inner); err != nil {
			return nil, err
		}
		longest = max(longest, len(b.Prompts[i].Tokens))
	}
	// k = min(max_multiples, (n − 1) // 75 + 1), at least 1 (Python's floor division: n = 0 gives 0).
	b.NumChunks = max(1, min(o.MaxChunks, floorDiv(longest-1, inner)+1))
	bos, eos, pad := tok.BOS(), tok.EOS(), tok.Pad()
	for i := range b.Prompts {
		b.Prompts[i].pad(b.NumChunks, o.ChunkLength, bos, eos, pad)
	}
	return b, nil
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// pad fills IDs, Weights and Chunks as pad_tokens_and_weights and get_unweighted_text_embeddings
// do for k chunks of length L.
func (w *Weighted) pad(k, L, bos, eos, pad int) {
	inner := L - 2
	n := len(w.Tokens)
	w.IDs = make([]int, 0, k*inner+2)
	w.IDs = append(append(w.IDs, bos), w.Tokens...)
	for len(w.IDs) < k*inner+1 {
		w.IDs = append(w.IDs, pad)
	}
	w.IDs = append(w.IDs, eos)

	// Weights: per chunk [1] + its slice of the token weights + [1], then 1s up to k·L. Only the
	// last non-empty chunk can be short, and the padding after it is 1 like its EOS, so every
	// weight lands on its token's row of the concatenated output.
	w.Weights = make([]float32, 0, k*L)
	if n > 0 {
		for j := range k {
			w.Weights = append(w.Weights, 1)
			for _, v := range w.TokenWeights[min(n, j*inner):min(n, (j+1)*inner)] {
				w.Weights = append(w.Weights, float32(v))
			}
			w.Weights = append(w.Weights, 1)
		}
	}
	for len(w.Weights) < k*L {
		w.Weights = append(w.Weights, 1)
	}

	// Chunk i is IDs[i·(L−2) : i·(L−2)+L] with its first id set to BOS and its last to EOS (the
	// ids they cover are the previous and next chunks' tokens). With k = 1 it is IDs itself.
	w.Chunks = make([][]int, k)
	for i := range k {
		c := append([]int(nil), w.IDs[i*inner:i*inner+L]...)
		c[0], c[L-1] = w.IDs[0], w.IDs[len(w.IDs)-1]
		w.Chunks[i] = c
	}
}

// Unweighted runs every chunk of every prompt through the text encoder (in one batch) and
// returns the outputs concatenated per prompt, BOS and EOS rows included: P×(k·L)×dim.
func (b *Batch) Unweighted(ctx context.Context, enc Encoder) (*tensor.Dense, error) {
	ids := make([][]int, 0, len(b.Prompts)*b.NumChunks)
	for _, p := range b.Prompts {
		ids = append(ids, p.Chunks...)
	}
	out, err := enc.Encode(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("prompt: text encoder: %w", err)
	}
	s := out.Shape()
	if len(s) != 3 || s[0] != len(ids) || s[1] != b.ChunkLength {
		return nil, fmt.Errorf("prompt: text encoder output has shape %v, want %d×%d×dim", s, len(ids), b.ChunkLength)
	}
	data, ok := out.Data().([]float32)
	if !ok || len(data) < out.Size() {
		return nil, fmt.Errorf("prompt: text encoder output is %v, want float32", out.Dtype())
	}
	// The chunks of a prompt are consecutive rows, so the data already is P×(k·L)×dim.
	return tensor.New(tensor.WithShape(len(b.Prompts), b.NumChunks*b.ChunkLength, s[2]),
		tensor.WithBacking(data[:out.Size()])), nil
}

// Embed returns the weighted embeddings of the prompts, P×(k·L)×dim: the text encoder's
// outputs (Unweighted), each row multiplied by its weight, then each prompt's whole rescaled so
// that its mean equals the unweighted mean (get_weighted_text_embeddings).
func (b *Batch) Embed(ctx context.Context, enc Encoder) (*tensor.Dense, error) {
	t, err := b.Unweighted(ctx, enc)
	if err != nil {
		return nil, err
	}
	data := t.Data().([]float32)
	per := len(data) / len(b.Prompts)
	dim := t.Shape()[2]
	for i, p := range b.Prompts {
		if err := Reweight(data[i*per:(i+1)*per], p.Weights, dim); err != nil {
			return nil, fmt.Errorf("prompt %d: %w", i, err)
		}
	}
	return t, nil
}

// Reweight multiplies each row of emb (len(weights) rows of dim values) by its weight and then
// the whole by prev/cur, the means before and after, in float32 as torch does:
//
//	prev = mean(emb); emb *= weights[:, None]; cur = mean(emb); emb *= prev / cur
//
// The means are summed in float64 (torch sums float32 in a different order; the difference is
// far below float32 rounding of the result). A non-finite result is an error: a weight such as
// (x:1e400) or one that cancels the mean to zero makes the reference produce Inf or NaN.
func Reweight(emb []float32, weights []float32, dim int) error {
	if dim < 1 || len(emb) != len(weights)*dim {
		return fmt.Errorf("prompt: Reweight: %d values for %d weights of %d dims", len(emb), len(weights), dim)
	}
	prev := mean(emb)
	for r, w := range weights {
		row := emb[r*dim : (r+1)*dim]
		for j := range row {
			row[j] *= w
		}
	}
	cur := mean(emb)
	s := prev / cur
	if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
		return fmt.Errorf("prompt: weights give a rescale factor of %v (means %v unweighted, %v weighted)", s, prev, cur)
	}
	for j := range emb {
		emb[j] *= s
	}
	for _, v := range emb {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return errors.New("prompt: weighted embeddings are not finite (a weight is too large)")
		}
	}
	return nil
}

// mean is torch's float32 mean, summed in float64 and rounded once.
func mean(x []float32) float32 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return float32(s / float64(len(x)))
}

// Embed is Prepare followed by Batch.Embed: the weighted embeddings of prompts padded to the same
// number of chunks, P×(k·L)×dim.
func Embed(ctx context.Context, tok Tokenizer, enc Encoder, prompts []string, opts Options) (*tensor.Dense, error) {
	b, err := Prepare(tok, prompts, opts)
	if err != nil {
		return nil, err
	}
	return b.Embed(ctx, enc)
}
