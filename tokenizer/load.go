package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxMerges is how many merges CLIPTokenizer reads: lines 1 to 49152-256-2 of
// merges.txt (line 0, the "#version" header, is skipped whatever it says).
const maxMerges = 49152 - 256 - 2

// Load reads a tokenizer from dir, which is either the tokenizer folder itself
// (holding vocab.json and merges.txt) or a diffusers model folder with a
// tokenizer/ subfolder. Special tokens come from special_tokens_map.json, then
// tokenizer_config.json, when present, else CLIP's defaults: bos
// <|startoftext|>, eos, pad and unk <|endoftext|>.
func Load(dir string) (*Tokenizer, error) {
	dir, err := resolveDir(dir)
	if err != nil {
		return nil, err
	}
	vocab, err := readVocab(filepath.Join(dir, "vocab.json"))
	if err != nil {
		return nil, err
	}
	ranks, err := readMerges(filepath.Join(dir, "merges.txt"), vocab)
	if err != nil {
		return nil, err
	}
	t := newTokenizer(vocab, ranks)
	// transformers: tokenizer_config.json gives the constructor's arguments,
	// then special_tokens_map.json overrides them.
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json"} {
		if err := t.readSpecials(filepath.Join(dir, name)); err != nil {
			return nil, err
		}
	}
	if err := t.setSpecials(filepath.Join(dir, "vocab.json")); err != nil {
		return nil, err
	}
	return t, nil
}

// newTokenizer makes a Tokenizer with CLIP's default special tokens (see setSpecials).
func newTokenizer(vocab map[string]int, ranks map[pair]int) *Tokenizer {
	return &Tokenizer{vocab: vocab, ranks: ranks, byteEnc: byteToUnicode(),
		bos: startOfText, eos: endOfText, pad: endOfText, unk: endOfText}
}

// setSpecials looks up the special tokens' ids; vocabName names the vocabulary in errors.
func (t *Tokenizer) setSpecials(vocabName string) error {
	vocab := t.vocab
	t.specialWords = make(map[string]word)
	for _, s := range []struct {
		tok  string
		id   *int
		role string
	}{{t.bos, &t.bosID, "bos"}, {t.eos, &t.eosID, "eos"}, {t.pad, &t.padID, "pad"}, {t.unk, &t.unkID, "unk"}} {
		id, ok := vocab[s.tok]
		if !ok {
			return fmt.Errorf("tokenizer: %s token %q is not in %s", s.role, s.tok, vocabName)
		}
		*s.id = id
		if _, dup := t.specialWords[s.tok]; !dup {
			t.specials = append(t.specials, s.tok)
			t.specialWords[s.tok] = word{tokens: []string{s.tok}, ids: []int{id}}
		}
	}
	return nil
}

// resolveDir accepts the tokenizer folder or a model folder holding exactly
// one candidate, tokenizer/.
func resolveDir(dir string) (string, error) {
	here := fileExists(filepath.Join(dir, "vocab.json"))
	sub := fileExists(filepath.Join(dir, "tokenizer", "vocab.json"))
	switch {
	case here && sub:
		return "", fmt.Errorf("tokenizer: %s is ambiguous: both it and its tokenizer/ subfolder hold vocab.json", dir)
	case here:
		return dir, nil
	case sub:
		return filepath.Join(dir, "tokenizer"), nil
	}
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("tokenizer: %w", err)
	}
	return "", fmt.Errorf("tokenizer: no vocab.json in %s or %s", dir, filepath.Join(dir, "tokenizer"))
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// readVocab reads vocab.json, a JSON object of token → non-negative id.
func readVocab(path string) (map[string]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	// Presized (json.Unmarshal fills an existing map) to avoid rehashing.
	vocab := make(map[string]int, bytes.Count(data, []byte(":")))
	if json.Unmarshal(data, &vocab) == nil {
		ok := len(vocab) > 0
		for _, id := range vocab {
			ok = ok && id >= 0 && id <= 1<<31-1
		}
		if ok {
			return vocab, nil
		}
	}
	return nil, diagnoseVocab(path, data)
}

// diagnoseVocab streams a vocab.json that failed to load to find what is
// wrong and on which line.
func diagnoseVocab(path string, data []byte) error {
	fail := func(off int64, format string, args ...any) error {
		return fmt.Errorf("tokenizer: %s:%d: %s", path, lineAt(data, off), fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fail(dec.InputOffset(), "want a JSON object of token → id (%v)", jsonErr(err))
	}
	n := 0
	for dec.More() {
		off := dec.InputOffset()
		k, err := dec.Token()
		if err != nil {
			return fail(jsonOffset(err, off), "%v", eofErr(err))
		}
		key, _ := k.(string)
		v, err := dec.Token()
		if err != nil {
			return fail(jsonOffset(err, off), "token %q: %v", key, eofErr(err))
		}
		num, ok := v.(json.Number)
		id, nerr := num.Int64()
		if !ok || nerr != nil || id < 0 || id > 1<<31-1 {
			return fail(dec.InputOffset(), "token %q: id %v is not a non-negative integer", key, v)
		}
		n++
	}
	if _, err := dec.Token(); err != nil {
		return fail(jsonOffset(err, dec.InputOffset()), "%v", eofErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(dec.InputOffset(), "unexpected data after the JSON object")
	}
	if n == 0 {
		return fmt.Errorf("tokenizer: %s: empty vocabulary", path)
	}
	return fmt.Errorf("tokenizer: %s: not a JSON object of token → id", path)
}

func jsonErr(err error) any {
	if err == nil {
		return "found something else"
	}
	return eofErr(err)
}

// eofErr words a bare EOF from the JSON decoder as what it means here.
func eofErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("unexpected end of file")
	}
	return err
}

func jsonOffset(err error, def int64) int64 {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Offset
	}
	return def
}

// lineAt returns the 1-based line number of byte offset off in data.
func lineAt(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// readMerges reads merges.txt as CLIPTokenizer does (the file is stripped,
// split on "\n", line 0 dropped, at most maxMerges lines kept; a later
// duplicate of a merge takes its rank) and checks each kept line: two
// symbols, both in the vocabulary.
func readMerges(path string, vocab map[string]int) (map[pair]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return parseMerges(path, data, vocab)
}

// parseMerges is readMerges on the file's contents; path names it in errors.
func parseMerges(path string, data []byte, vocab map[string]int) (map[pair]int, error) {
	text := string(data)
	trimmed := strings.TrimLeftFunc(text, isPySpace)
	first := strings.Count(text[:len(text)-len(trimmed)], "\n") + 1 // file line of lines[0]
	lines := strings.Split(strings.TrimRightFunc(trimmed, isPySpace), "\n")
	if len(lines) > maxMerges+1 {
		lines = lines[:maxMerges+1]
	}
	ranks := make(map[pair]int, len(lines))
	for i, line := range lines[1:] {
		f := fields(line)
		lineNo := first + 1 + i
		if len(f) == 0 {
			continue // blank: transformers reads it as an empty merge, which never applies
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("tokenizer: %s:%d: want two symbols separated by a space, found %q", path, lineNo, line)
		}
		for _, s := range f {
			if _, ok := vocab[s]; !ok {
				return nil, fmt.Errorf("tokenizer: %s:%d: symbol %q is not in vocab.json", path, lineNo, s)
			}
		}
		ranks[pair{f[0], f[1]}] = i
	}
	return ranks, nil
}

// fields is strings.Fields with a fast path for "a b".
func fields(line string) []string {
	if a, b, ok := strings.Cut(line, " "); ok && a != "" && b != "" && !strings.ContainsFunc(line, isPySpaceNotBlank) {
		if !strings.Contains(b, " ") {
			return []string{a, b}
		}
	}
	return strings.FieldsFunc(line, isPySpace)
}

func isPySpaceNotBlank(r rune) bool { return r != ' ' && isPySpace(r) }

func isPySpace(r rune) bool {
	return strings.ContainsRune(" \t\n\r\v\f\x1c\x1d\x1e\x1f\x85\u00a0\u1680\u2028\u2029\u202f\u205f\u3000", r) ||
		(r >= 0x2000 && r <= 0x200A)
}

// readSpecials reads the special tokens from a tokenizer_config.json or
// special_tokens_map.json, if the file exists. A token is a string or an
// object with "content".
func (t *Tokenizer) readSpecials(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("tokenizer: %s:%d: %v", path, lineAt(data, jsonOffset(err, 0)), err)
	}
	for key, dst := range map[string]*string{"bos_token": &t.bos, "eos_token": &t.eos, "pad_token": &t.pad, "unk_token": &t.unk} {
		raw, ok := m[key]
		if !ok || string(raw) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			var obj struct {
				Content *string `json:"content"`
			}
			if json.Unmarshal(raw, &obj) != nil || obj.Content == nil {
				return fmt.Errorf("tokenizer: %s: %s is neither a string nor an object with \"content\"", path, key)
			}
			s = *obj.Content
		}
		if s == "" {
			return fmt.Errorf("tokenizer: %s: %s is empty", path, key)
		}
		*dst = s
	}
	return nil
}
