package tokenizer

import (
	"bytes"
	"compress/bzip2"
	_ "embed"
	"fmt"
	"io"
	"strings"
)

// clipMerges is CLIP's merges.txt (OpenAI, MIT licence: see CLIP_LICENSE), bzip2-compressed.
//
//go:embed clip_merges.txt.bz2
var clipMerges []byte

// CLIP returns the tokenizer of SD 1.x (openai/clip-vit-large-patch14's: 49,408 tokens,
// <|startoftext|> and <|endoftext|>), built from the merges embedded in this package, so a
// single-file checkpoint needs no tokenizer folder. The vocabulary is derived from the merges
// as CLIP builds it: the 256 byte symbols, the same with "</w>", one token per merge, then the
// two special tokens; it equals the model folders' vocab.json. Each call decompresses and
// builds a new Tokenizer (about 0.1 s); keep it.
func CLIP() (*Tokenizer, error) {
	data, err := io.ReadAll(bzip2.NewReader(bytes.NewReader(clipMerges)))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: embedded CLIP merges: %w", err)
	}
	const name = "embedded CLIP merges.txt"
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > maxMerges+1 {
		lines = lines[:maxMerges+1]
	}
	// bytes_to_unicode's order: the printable bytes first, then the others.
	enc := byteToUnicode()
	var order []string
	for pass := 0; pass < 2; pass++ {
		for b := 0; b < 256; b++ {
			if printable := b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE; printable == (pass == 0) {
				order = append(order, enc[b])
			}
		}
	}
	vocab := make(map[string]int, 2*256+len(lines)+1)
	for _, s := range order {
		vocab[s] = len(vocab)
	}
	for _, s := range order {
		vocab[s+"</w>"] = len(vocab)
	}
	for _, l := range lines[1:] {
		a, b, ok := strings.Cut(l, " ")
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s: bad line %q", name, l)
		}
		vocab[a+b] = len(vocab)
	}
	vocab[startOfText] = len(vocab)
	vocab[endOfText] = len(vocab)
	ranks, err := parseMerges(name, data, vocab)
	if err != nil {
		return nil, err
	}
	t := newTokenizer(vocab, ranks)
	if err := t.setSpecials(name); err != nil {
		return nil, err
	}
	return t, nil
}
