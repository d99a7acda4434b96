package tokenizer

import (
	"math/rand"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestBPEHeapMatchesLoop compares the heap BPE with the reference loop on
// random words, short and long, over the tiny and (when present) real
// vocabularies.
func TestBPEHeapMatchesLoop(t *testing.T) {
	toks := map[string]*Tokenizer{}
	var err error
	if toks["tiny"], err = Load("../testdata/tiny-sd/tokenizer"); err != nil {
		t.Fatal(err)
	}
	if tk, err := Load(clipDir); err == nil {
		toks["clip"] = tk
	} else {
		t.Logf("real CLIP vocabulary not available (%v): tiny vocabulary only", err)
	}
	r := rand.New(rand.NewSource(1))
	alphabets := []string{"ab", "aab", "abcdefghijklmnopqrstuvwxyz", "thequickbrownfoxjumpsoverthelazydog", "xyz0123456789.,-", "éàüß日本"}
	for name, tk := range toks {
		words := 0
		for _, n := range []int{1, 2, 3, 5, 10, 47, 48, 100, 500} {
			for k := 0; k < 60; k++ {
				alpha := []rune(alphabets[r.Intn(len(alphabets))])
				var b strings.Builder
				for i := 0; i < n; i++ {
					for _, c := range []byte(string(alpha[r.Intn(len(alpha))])) {
						b.WriteString(tk.byteEnc[c])
					}
				}
				w := b.String()
				full := w + "</w>"
				var syms []string
				var offs []int
				for i := 0; i < len(w); {
					_, m := utf8.DecodeRuneInString(w[i:])
					syms = append(syms, full[i:i+m])
					offs = append(offs, i)
					i += m
				}
				syms[len(syms)-1] = full[offs[len(offs)-1]:]
				loop := tk.bpeLoop(full, slices.Clone(syms), slices.Clone(offs))
				hp := tk.bpeHeap(full, slices.Clone(syms), slices.Clone(offs))
				if !slices.Equal(loop, hp) {
					t.Fatalf("%s: word %q:\nloop %q\nheap %q", name, w, loop, hp)
				}
				words++
			}
		}
		t.Logf("%s: heap and loop BPE agree on %d random words", name, words)
	}
}
