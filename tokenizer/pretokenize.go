package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Special token strings of the CLIP vocabulary, also hard-wired in CLIP's
// pre-tokenisation pattern.
const (
	startOfText = "<|startoftext|>"
	endOfText   = "<|endoftext|>"
)

// contractions are the pattern's contraction alternatives, in pattern order.
var contractions = [...]string{"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}

// splitWords returns what
//
//	regex.findall(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
//	              text, regex.IGNORECASE)
//
// finds in text, which basicClean has already lower-cased and whose only
// whitespace is ' '. Alternatives are tried in order at each position, as a
// backtracking regex engine does.
func splitWords(text string, emit func(word string)) {
	for i := 0; i < len(text); {
		if n := matchFold(text[i:], startOfText); n > 0 {
			emit(text[i : i+n])
			i += n
			continue
		}
		if n := matchFold(text[i:], endOfText); n > 0 {
			emit(text[i : i+n])
			i += n
			continue
		}
		if text[i] == '\'' {
			matched := false
			for _, c := range contractions {
				if n := matchFold(text[i:], c); n > 0 {
					emit(text[i : i+n])
					i += n
					matched = true
					break
				}
			}
			if matched {
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case unicode.IsLetter(r):
			j := i + size
			for j < len(text) {
				r, n := utf8.DecodeRuneInString(text[j:])
				if !unicode.IsLetter(r) {
					break
				}
				j += n
			}
			emit(text[i:j])
			i = j
		case unicode.IsNumber(r):
			emit(text[i : i+size])
			i += size
		case isGap(r):
			i += size
		default:
			j := i + size
			for j < len(text) {
				r, n := utf8.DecodeRuneInString(text[j:])
				if unicode.IsLetter(r) || unicode.IsNumber(r) || isGap(r) {
					break
				}
				j += n
			}
			emit(text[i:j])
			i = j
		}
	}
}

// isGap reports the code points that no alternative of the pattern matches,
// so findall skips them: \s (Unicode White_Space) and, because the regex
// module's IGNORECASE lets a negated class reject a character whose case
// variant is in it, U+0345 (combining ypogegrammeni, which folds to ι).
func isGap(r rune) bool {
	return r == 0x345 || unicode.Is(unicode.White_Space, r)
}

// matchFold reports the byte length of the prefix of s that matches lit
// (lower-case ASCII) under the regex module's IGNORECASE simple case folding,
// or 0. Besides ASCII case, the only code points folding onto ASCII letters
// are U+017F (ſ → s) and U+212A (K → k).
func matchFold(s, lit string) int {
	j := 0
	for i := 0; i < len(lit); i++ {
		if j >= len(s) {
			return 0
		}
		c := lit[i]
		if s[j] == c || (s[j]|0x20 == c && c >= 'a' && c <= 'z') {
			j++
			continue
		}
		if c == 's' && strings.HasPrefix(s[j:], "ſ") {
			j += len("ſ")
			continue
		}
		if c == 'k' && strings.HasPrefix(s[j:], "\u212A") {
			j += len("\u212A")
			continue
		}
		return 0
	}
	return j
}
