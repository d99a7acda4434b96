package tokenizer

import (
	"slices"
	"testing"
)

// Expected values are Python 3's (unicodedata.normalize("NFC", s) and
// str.lower()), which the reference tokenizer calls.
func TestNFC(t *testing.T) {
	for _, c := range [][2]string{
		{"e\u0301", "é"},
		{"A\u030a", "Å"},
		{"\u212b", "Å"},                   // singleton: Angstrom sign
		{"a\u0308\u0323", "\u1ea1\u0308"}, // reordered (dot below first), then composed
		{"\u1112\u1161\u11ab", "한"},       // Hangul L V T
		{"\u0301e", "\u0301e"},            // a leading combining mark stays
		{"\uf900", "\u8c48"},              // CJK compatibility ideograph
		{"\u0958", "\u0915\u093c"},        // composition exclusion
		{"plain ascii, Latin-1 café", "plain ascii, Latin-1 café"},
	} {
		if got := nfc(c[0]); got != c[1] {
			t.Errorf("nfc(%+q) = %+q, want %+q", c[0], got, c[1])
		}
	}
}

func TestPyLower(t *testing.T) {
	for _, c := range [][2]string{
		{"HELLO", "hello"},
		{"ΟΔΟΣ", "οδος"},          // final sigma
		{"ΣΑ", "σα"},              // not final
		{"Σ", "σ"},                // alone: not final
		{"AΣ'", "aς'"},            // final, followed by a case-ignorable
		{"İstanbul", "i̇stanbul"}, // U+0130 lowers to two code points
		{"ǅ", "ǆ"},
	} {
		if got := pyLower(c[0]); got != c[1] {
			t.Errorf("pyLower(%+q) = %+q, want %+q", c[0], got, c[1])
		}
	}
}

func TestBasicClean(t *testing.T) {
	for _, c := range [][2]string{
		{"  Tabs\tand\nnew\r\nlines  ", "tabs and new lines"},
		{"zero\u200bwidth \x00nul \ufffd \x7fdel", "zerowidth nul del"},
		{"日本の桜", "日 本 の 桜"},
		{"a\u2028b\u00a0c\u3000d", "a b c d"},
	} {
		if got := basicClean(c[0]); got != c[1] {
			t.Errorf("basicClean(%+q) = %+q, want %+q", c[0], got, c[1])
		}
	}
}

func TestSplitWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"don't stop", []string{"don", "'t", "stop"}},
		{"'stop", []string{"'s", "top"}},
		{"3.14", []string{"3", ".", "1", "4"}},
		{"a---b", []string{"a", "---", "b"}},
		{"!<|endoftext|>", []string{"!<|", "endoftext", "|>"}},
		{"<|startoftext|>x", []string{"<|startoftext|>", "x"}},
		{"'ſ", []string{"'ſ"}},      // IGNORECASE: ſ folds to s
		{"aͅb", []string{"a", "b"}}, // U+0345 matches no alternative
	} {
		var got []string
		splitWords(c.in, func(w string) { got = append(got, w) })
		if !slices.Equal(got, c.want) {
			t.Errorf("splitWords(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
