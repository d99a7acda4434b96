package tokenizer

import (
	"strings"
	"unicode"
)

// basicClean does what transformers' BasicTokenizer(strip_accents=False,
// do_split_on_punc=False).tokenize does when CLIPTokenizer runs without ftfy,
// followed by the " ".join of its output:
// control characters (Unicode category C*, including unassigned code points)
// and U+0000/U+FFFD are dropped, whitespace becomes a space, CJK ideographs
// get spaces around them, the text is NFC-normalised, split on whitespace,
// and each word is lower-cased as Python's str.lower does. Invalid UTF-8
// decodes to U+FFFD and is therefore dropped too.
func basicClean(text string) string {
	var b strings.Builder
	b.Grow(len(text) + 8)
	for _, r := range text {
		if r < 0x80 { // ASCII fast path: same outcome as the cases below
			switch {
			case r == ' ' || r == '\t' || r == '\n' || r == '\r':
				b.WriteByte(' ')
			case r >= 0x20 && r != 0x7F:
				b.WriteByte(byte(r))
			}
			continue
		}
		switch {
		case r == 0xFFFD || isControl(r):
			continue
		case isWhitespace(r):
			b.WriteByte(' ')
		case isCJK(r):
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	s := nfc(b.String())

	// whitespace_tokenize: str.split() splits on Python's whitespace; after the
	// clean-up above only ' ', U+2028 and U+2029 can be left.
	words := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == 0x2028 || r == 0x2029 })
	for i, w := range words {
		words[i] = pyLower(w)
	}
	return strings.Join(words, " ")
}

// isControl is transformers' _is_control: category C* (Cc, Cf, Co, Cs and,
// for unassigned code points, Cn), but not \t, \n, \r. Every code point is
// in exactly one major category, so C* is "none of the others".
func isControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z)
}

// isWhitespace is transformers' _is_whitespace.
func isWhitespace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.Zs, r)
}

// isCJK is BasicTokenizer._is_chinese_char.
func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}

// pyLower is Python's str.lower: the full lower-case mapping (U+0130 becomes
// "i̇", two code points) and the Final_Sigma rule for U+03A3.
func pyLower(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s) + 2)
	for i, r := range rs {
		switch r {
		case 0x130:
			b.WriteString("i\u0307")
		case 0x3A3:
			if finalSigma(rs, i) {
				b.WriteRune(0x3C2)
			} else {
				b.WriteRune(0x3C3)
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma is CPython's handle_capital_sigma: Σ preceded by a cased letter
// (skipping case-ignorable ones) and not followed by one.
func finalSigma(rs []rune, i int) bool {
	j := i - 1
	for j >= 0 && isCaseIgnorable(rs[j]) {
		j--
	}
	if j < 0 || !isCased(rs[j]) {
		return false
	}
	j = i + 1
	for j < len(rs) && isCaseIgnorable(rs[j]) {
		j++
	}
	return j == len(rs) || !isCased(rs[j])
}

func isCased(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

func isCaseIgnorable(r rune) bool {
	switch r {
	case 0x27, 0x2E, 0x3A, 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true // Word_Break MidLetter, MidNumLet, Single_Quote
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}
