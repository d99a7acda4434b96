package tokenizer

import (
	"fmt"
	"testing"
)

// TestEmbeddedCLIP: the built-in tokenizer gives the reference ids of every case, without the
// shared vocabulary.
func TestEmbeddedCLIP(t *testing.T) {
	tk, err := CLIP()
	if err != nil {
		t.Fatal(err)
	}
	if tk.VocabSize() != 49408 || tk.BOS() != 49406 || tk.EOS() != 49407 || tk.Pad() != 49407 {
		t.Fatalf("vocab %d, bos %d, eos %d, pad %d", tk.VocabSize(), tk.BOS(), tk.EOS(), tk.Pad())
	}
	checkCases(t, tk, readCases(t, "tokenizer-clip.json"))
}

// TestEmbeddedVocabEqualsFolder: the derived vocabulary and the merges equal those of the
// real tokenizer folder (skipped without it).
func TestEmbeddedVocabEqualsFolder(t *testing.T) {
	ref := loadClip(t)
	tk, err := CLIP()
	if err != nil {
		t.Fatal(err)
	}
	if len(tk.vocab) != len(ref.vocab) || len(tk.ranks) != len(ref.ranks) {
		t.Fatalf("vocab %d / merges %d, want %d / %d", len(tk.vocab), len(tk.ranks), len(ref.vocab), len(ref.ranks))
	}
	for k, id := range ref.vocab {
		if tk.vocab[k] != id {
			t.Fatalf("token %q: id %d, want %d", k, tk.vocab[k], id)
		}
	}
	for p, r := range ref.ranks {
		if tk.ranks[p] != r {
			t.Fatalf("merge %v: rank %d, want %d", p, tk.ranks[p], r)
		}
	}
	t.Logf("%d tokens and %d merges equal vocab.json's and merges.txt's", len(tk.vocab), len(tk.ranks))
}

func ExampleCLIP() {
	tk, err := CLIP()
	if err != nil {
		panic(err)
	}
	fmt.Println(tk.Encode("a apple, 4k"))
	// Output: [49406 320 3055 267 275 330 49407]
}
