package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTok writes a tokenizer folder with the given files (nil: absent).
func writeTok(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const goodVocab = `{"a": 0, "b": 1, "a</w>": 2, "b</w>": 3, "ab</w>": 4,
"<|startoftext|>": 5, "<|endoftext|>": 6}`
const goodMerges = "#version: 0.2\na b</w>\n"

func TestLoadSmall(t *testing.T) {
	tk, err := Load(writeTok(t, map[string]string{"vocab.json": goodVocab, "merges.txt": goodMerges}))
	if err != nil {
		t.Fatal(err)
	}
	got := tk.Encode("ab ba AB")
	want := []int{5, 4, 1, 2, 4, 6}
	if !equalInts(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	// "c" is not in the vocabulary: it becomes the unknown token.
	if got := tk.Encode("c"); !equalInts(got, []int{5, 6, 6}) {
		t.Errorf("Encode(c) = %v, want [5 6 6]", got)
	}
	if got := tk.EncodePadded("ab ab ab", 4); !equalInts(got, []int{5, 4, 4, 6}) {
		t.Errorf("EncodePadded(.., 4) = %v, want [5 4 4 6]", got)
	}
	if got := tk.EncodePadded("ab", 0); !equalInts(got, []int{5, 6}) {
		t.Errorf("EncodePadded(.., 0) = %v, want [5 6]", got)
	}
	t.Logf("BOS %d EOS %d pad %d unk %d vocab %d", tk.BOS(), tk.EOS(), tk.Pad(), tk.Unk(), tk.VocabSize())
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLoadSpecialTokens(t *testing.T) {
	vocab := `{"a</w>": 0, "<s>": 1, "</s>": 2, "<pad>": 3, "<|startoftext|>": 4, "<|endoftext|>": 5}`
	dir := writeTok(t, map[string]string{
		"vocab.json":              vocab,
		"merges.txt":              "#version: 0.2\n",
		"tokenizer_config.json":   `{"bos_token": "<s>", "eos_token": {"content": "</s>", "lstrip": false}, "pad_token": "<|endoftext|>"}`,
		"special_tokens_map.json": `{"pad_token": "<pad>"}`,
	})
	tk, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tk.BOS() != 1 || tk.EOS() != 2 || tk.Pad() != 3 || tk.Unk() != 5 {
		t.Errorf("bos/eos/pad/unk = %d/%d/%d/%d, want 1/2/3/5", tk.BOS(), tk.EOS(), tk.Pad(), tk.Unk())
	}
	if got := tk.EncodePadded("a</s>", 5); !equalInts(got, []int{1, 0, 2, 2, 3}) {
		t.Errorf("EncodePadded = %v, want [1 0 2 2 3]", got)
	}
}

func TestLoadModelFolder(t *testing.T) {
	model := t.TempDir()
	tokDir := filepath.Join(model, "tokenizer")
	if err := os.Mkdir(tokDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"vocab.json": goodVocab, "merges.txt": goodMerges} {
		if err := os.WriteFile(filepath.Join(tokDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load(model); err != nil {
		t.Errorf("Load(model folder): %v", err)
	}
	// Both the folder and tokenizer/ hold a vocabulary: ambiguous.
	if err := os.WriteFile(filepath.Join(model, "vocab.json"), []byte(goodVocab), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(model)
	t.Logf("ambiguous: %v", err)
	if err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("Load(ambiguous folder): got %v, want an error saying it is ambiguous", err)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error
	}{
		{"no folder", nil, []string{"absent"}},
		{"missing merges", map[string]string{"vocab.json": goodVocab}, []string{"merges.txt"}},
		{"missing vocab", map[string]string{"merges.txt": goodMerges}, []string{"vocab.json"}},
		{"vocab syntax", map[string]string{"vocab.json": "{\"a\": 0,\n\"b\" 1}", "merges.txt": goodMerges}, []string{"vocab.json:2:"}},
		{"vocab not object", map[string]string{"vocab.json": "[1, 2]", "merges.txt": goodMerges}, []string{"vocab.json:1:", "JSON object"}},
		{"vocab bad id", map[string]string{"vocab.json": "{\"a\": 0,\n\n\"b\": \"x\"}", "merges.txt": goodMerges}, []string{"vocab.json:3:", `"b"`}},
		{"vocab negative id", map[string]string{"vocab.json": `{"a": -1}`, "merges.txt": goodMerges}, []string{"vocab.json:1:", "non-negative"}},
		{"vocab truncated", map[string]string{"vocab.json": `{"a": 0, "b": 1`, "merges.txt": goodMerges}, []string{"vocab.json:1:", "end of file"}},
		{"vocab trailing", map[string]string{"vocab.json": goodVocab + " {}", "merges.txt": goodMerges}, []string{"vocab.json:2:", "after"}},
		{"merge unknown symbol", map[string]string{"vocab.json": goodVocab, "merges.txt": "#version: 0.2\na b</w>\nab c\n"}, []string{"merges.txt:3:", `"ab"`}},
		{"merge malformed", map[string]string{"vocab.json": goodVocab, "merges.txt": "#version: 0.2\n\na b</w> a\n"}, []string{"merges.txt:3:", "two symbols"}},
		{"no eos in vocab", map[string]string{"vocab.json": `{"a": 0, "<|startoftext|>": 1}`, "merges.txt": "#version: 0.2\n"}, []string{"eos", "<|endoftext|>", "vocab.json"}},
		{"bad special map", map[string]string{"vocab.json": goodVocab, "merges.txt": goodMerges, "special_tokens_map.json": `{"bos_token": 3}`}, []string{"special_tokens_map.json", "bos_token"}},
		{"bad config json", map[string]string{"vocab.json": goodVocab, "merges.txt": goodMerges, "tokenizer_config.json": "{\n,"}, []string{"tokenizer_config.json:2:"}},
	} {
		dir := filepath.Join(t.TempDir(), "absent")
		if c.files != nil {
			dir = writeTok(t, c.files)
		}
		_, err := Load(dir)
		if err == nil {
			t.Errorf("%s: Load succeeded, want an error", c.name)
			continue
		}
		t.Logf("%s: %v", c.name, err)
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
}

// TestNFCInput checks that decomposed (NFD) input encodes as its composed
// form, as BasicTokenizer's NFC step makes the reference do.
func TestNFCInput(t *testing.T) {
	tk := loadClip(t)
	for _, c := range [][2]string{
		{"café naïve", "cafe\u0301 nai\u0308ve"},
		{"Ångström", "A\u030angstro\u0308m"},
		{"한국어", "\u1112\u1161\u11ab\u1100\u116e\u11a8\u110b\u1165"},
	} {
		a, b := tk.Encode(c[0]), tk.Encode(c[1])
		if !equalInts(a, b) {
			t.Errorf("Encode(%+q) = %v, Encode(%+q) = %v: want equal", c[0], a, c[1], b)
		}
	}
}
