// Package tokenizer is CLIP's byte-level BPE tokenizer, as transformers v4.33
// CLIPTokenizer runs it without ftfy (the tokenizer diffusers'
// StableDiffusionPipeline loads), read from a diffusers model folder's
// tokenizer/vocab.json and tokenizer/merges.txt.
//
// Text goes through transformers' BasicTokenizer clean-up (control characters
// dropped, whitespace normalised, CJK ideographs split out, NFC, lower case),
// then CLIP's pre-tokenisation pattern, then bytes-to-unicode mapping and BPE
// with the "</w>" end-of-word marker. The special tokens (by default
// <|startoftext|> and <|endoftext|>) are recognised anywhere in the input.
//
// Unicode tables: character classes and case mapping come from Go's unicode
// package (Unicode 15), NFC from Python's unicodedata (see nfc_tables.go); the
// reference used whatever versions its Python had, so code points assigned in
// recent Unicode versions (new emoji, for example) may tokenise differently.
package tokenizer

import "strings"

// Tokenizer is a loaded CLIP BPE tokenizer. It is safe for concurrent use by
// multiple goroutines.
type Tokenizer struct {
	vocab   map[string]int
	ranks   map[pair]int
	byteEnc [256]string

	bos, eos, pad, unk         string
	bosID, eosID, padID, unkID int
	specials                   []string        // split out of the text before BPE
	specialWords               map[string]word // their tokens and ids

	cache bpeCache
}

// Encode tokenises text and returns BOS, the token ids and EOS, without
// truncation or padding.
func (t *Tokenizer) Encode(text string) []int {
	ids := []int{t.bosID}
	t.each(text, func(w word) { ids = append(ids, w.ids...) })
	return append(ids, t.eosID)
}

// EncodePadded returns exactly n ids, as the pipeline feeds the text encoder
// (n = 77): BOS, the token ids truncated to n-2, EOS, then the pad id up to
// length n. An n below 2 is taken as 2, the least that holds BOS and EOS.
func (t *Tokenizer) EncodePadded(text string, n int) []int {
	if n < 2 {
		n = 2
	}
	ids := make([]int, 1, n)
	ids[0] = t.bosID
	t.each(text, func(w word) {
		room := n - 1 - len(ids)
		if room <= 0 {
			return
		}
		if len(w.ids) > room {
			ids = append(ids, w.ids[:room]...)
			return
		}
		ids = append(ids, w.ids...)
	})
	ids = append(ids, t.eosID)
	for len(ids) < n {
		ids = append(ids, t.padID)
	}
	return ids
}

// Tokens returns the BPE tokens of text (without BOS and EOS), as
// CLIPTokenizer.tokenize does; useful for debugging. A token missing from the
// vocabulary is returned as it is, while Encode gives it the unknown token's id.
func (t *Tokenizer) Tokens(text string) []string {
	var toks []string
	t.each(text, func(w word) { toks = append(toks, w.tokens...) })
	return toks
}

// BOS returns the id of the beginning-of-sequence token (<|startoftext|>).
func (t *Tokenizer) BOS() int { return t.bosID }

// EOS returns the id of the end-of-sequence token (<|endoftext|>).
func (t *Tokenizer) EOS() int { return t.eosID }

// Pad returns the id of the padding token (<|endoftext|> for CLIP).
func (t *Tokenizer) Pad() int { return t.padID }

// Unk returns the id given to tokens missing from the vocabulary.
func (t *Tokenizer) Unk() int { return t.unkID }

// VocabSize returns the number of entries in vocab.json.
func (t *Tokenizer) VocabSize() int { return len(t.vocab) }

// each runs the tokenisation pipeline and calls f with every word's tokens.
// Like PreTrainedTokenizer.tokenize, it first splits the text on the special
// tokens (leftmost first, then longest; never lower-cased or split), then
// tokenises each piece.
func (t *Tokenizer) each(text string, f func(word)) {
	// next[k]: offset of special k's next occurrence at or after pos, or -1;
	// kept between splits so that many specials do not make this quadratic.
	var next [4]int // Load registers at most four specials
	for k, sp := range t.specials {
		next[k] = strings.Index(text, sp)
	}
	for pos := 0; pos < len(text); {
		best := -1
		for k, sp := range t.specials {
			if next[k] >= 0 && next[k] < pos {
				if i := strings.Index(text[pos:], sp); i >= 0 {
					next[k] = pos + i
				} else {
					next[k] = -1
				}
			}
			if next[k] >= 0 && (best < 0 || next[k] < next[best] ||
				(next[k] == next[best] && len(sp) > len(t.specials[best]))) {
				best = k
			}
		}
		if best < 0 {
			t.piece(text[pos:], f)
			return
		}
		sp := t.specials[best]
		t.piece(text[pos:next[best]], f)
		f(t.specialWords[sp])
		pos = next[best] + len(sp)
	}
}

// piece is CLIPTokenizer._tokenize on text holding no special token.
func (t *Tokenizer) piece(text string, f func(word)) {
	if text == "" {
		return
	}
	splitWords(basicClean(text), func(w string) { f(t.encodeWord(w)) })
}
