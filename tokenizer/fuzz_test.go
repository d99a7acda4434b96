package tokenizer

import (
	"slices"
	"testing"
)

// FuzzEncode checks, on the tiny vocabulary, that encoding never panics,
// always starts with BOS and ends with EOS, that EncodePadded has exactly n
// ids and agrees with Encode where it is not truncated, and that Tokens
// matches Encode.
func FuzzEncode(f *testing.F) {
	for _, c := range readCases(f, "tokenizer-tiny.json") {
		f.Add(c.Text, 77)
	}
	f.Add("a<|endoftext|><<|startoftext|>'S 'ſ Ⅻ aͅ ΟΔΟΣ İ e\u0301 \xff\xfe", 5)
	f.Add("", 0)
	tk, err := Load("../testdata/tiny-sd/tokenizer")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string, n int) {
		n %= 300
		ids := tk.Encode(text)
		if len(ids) < 2 || ids[0] != tk.BOS() || ids[len(ids)-1] != tk.EOS() {
			t.Fatalf("Encode(%q) = %v: want BOS first and EOS last", text, ids)
		}
		for _, id := range ids {
			if id < 0 || id >= tk.VocabSize() {
				t.Fatalf("Encode(%q): id %d out of range", text, id)
			}
		}
		if toks := tk.Tokens(text); len(toks) != len(ids)-2 {
			t.Fatalf("Tokens(%q) has %d tokens, Encode %d ids", text, len(toks), len(ids))
		}
		p := tk.EncodePadded(text, n)
		want := max(n, 2)
		if len(p) != want || p[0] != tk.BOS() {
			t.Fatalf("EncodePadded(%q, %d) = %v: want %d ids starting with BOS", text, n, p, want)
		}
		body := min(len(ids)-2, want-2)
		if !slices.Equal(p[:1+body], ids[:1+body]) || p[1+body] != tk.EOS() {
			t.Fatalf("EncodePadded(%q, %d) = %v: not Encode's %v truncated and closed by EOS", text, n, p, ids)
		}
		for _, id := range p[2+body:] {
			if id != tk.Pad() {
				t.Fatalf("EncodePadded(%q, %d) = %v: want padding after EOS", text, n, p)
			}
		}
	})
}
