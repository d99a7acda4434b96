package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// clipDir is the real 49,408-token CLIP vocabulary, shared reference data
// that is not copied into the repository.
const clipDir = "../../shared/clip-tokenizer"

type refCase struct {
	Text      string   `json:"text"`
	IDs       []int    `json:"ids"`
	IDsPadded []int    `json:"ids_padded_77"`
	Tokens    []string `json:"tokens"`
}

func readCases(t testing.TB, name string) []refCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Reference string    `json:"reference"`
		Cases     []refCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(ref.Cases) == 0 {
		t.Fatalf("%s: no cases", name)
	}
	t.Logf("%s: %d cases from %s", name, len(ref.Cases), ref.Reference)
	return ref.Cases
}

func loadClip(t testing.TB) *Tokenizer {
	t.Helper()
	if _, err := os.Stat(filepath.Join(clipDir, "vocab.json")); err != nil {
		t.Skipf("real CLIP vocabulary not available (%v); it lives in shared/clip-tokenizer beside the repository", err)
	}
	tk, err := Load(clipDir)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestReferenceTiny(t *testing.T) {
	tk, err := Load("../testdata/tiny-sd") // the model folder: resolves tokenizer/
	if err != nil {
		t.Fatal(err)
	}
	checkCases(t, tk, readCases(t, "tokenizer-tiny.json"))
}

func TestReferenceCLIP(t *testing.T) {
	checkCases(t, loadClip(t), readCases(t, "tokenizer-clip.json"))
}

func checkCases(t *testing.T, tk *Tokenizer, cases []refCase) {
	passed := 0
	for _, c := range cases {
		ok := true
		if got := tk.Encode(c.Text); !slices.Equal(got, c.IDs) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
			ok = false
		}
		if got := tk.EncodePadded(c.Text, 77); !slices.Equal(got, c.IDsPadded) {
			t.Errorf("EncodePadded(%q, 77)\n got %v\nwant %v", c.Text, got, c.IDsPadded)
			ok = false
		}
		if got := tk.Tokens(c.Text); !slices.Equal(got, c.Tokens) && !(len(got) == 0 && len(c.Tokens) == 0) {
			t.Errorf("Tokens(%q)\n got %q\nwant %q", c.Text, got, c.Tokens)
			ok = false
		}
		if ok {
			passed++
		}
	}
	t.Logf("%d of %d cases passed (ids bare and padded to 77, tokens)", passed, len(cases))
}

// TestConcurrent encodes from several goroutines at once (run with -race)
// and compares with a sequential run on a fresh tokenizer.
func TestConcurrent(t *testing.T) {
	cases := readCases(t, "tokenizer-tiny.json")
	seq, err := Load("../testdata/tiny-sd/tokenizer")
	if err != nil {
		t.Fatal(err)
	}
	want := make([][]int, len(cases))
	for i, c := range cases {
		want[i] = seq.Encode(c.Text)
	}
	par, _ := Load("../testdata/tiny-sd/tokenizer")
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(cases))
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := range cases {
				i := (k + g) % len(cases)
				if got := par.Encode(cases[i].Text); !slices.Equal(got, want[i]) {
					errs <- cases[i].Text
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for txt := range errs {
		t.Errorf("concurrent Encode(%q) differs from sequential", txt)
	}
}
