package prompt

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Segment is a piece of prompt text and the attention weight its tokens get.
type Segment struct {
	Text   string
	Weight float64
}

// attention is parse_prompt_attention's re_attention, alternative for alternative and in the same
// order (Go's regexp, like Python's re, takes the first alternative that matches, not the longest):
// the escapes \( \) \[ \] \\, any other backslash, "(", "[", ":<number>)", ")", "]", a run of
// other characters, a lone ":". Python's \d matches every Unicode decimal digit (category Nd), so
// the number is [+-]?[.\p{Nd}]+ here; Go's \d would be ASCII only.
var attention = regexp.MustCompile(`\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:([+-]?[.\p{Nd}]+)\)|\)|]|[^\\()\[\]:]+|:`)

// Multipliers of "(…)" and "[…]", as Python floats.
const (
	roundMultiplier  = 1.1
	squareMultiplier = 1 / 1.1
)

// Parse splits an AUTOMATIC1111-syntax prompt into segments with weights, exactly as
// parse_prompt_attention of diffusers v0.21.4's community lpw_stable_diffusion.py (and the web
// UI) does:
//
//	(text)      weight ×1.1       ((text)) ×1.21, and so on
//	[text]      weight ÷1.1
//	(text:1.3)  weight ×1.3 (any number, negative too)
//	\( \) \[ \] \\   the literal character
//
// Weights are float64 products in the order the brackets close, as Python computes them, so
// they compare equal to the reference's. The only error is a weight that matches the syntax but
// is not a number, such as "(a:1.2.3)": Python's float() raises ValueError there.
//
// The reference's quirks, all reproduced:
//   - A backslash before any other character is dropped (it becomes an empty segment).
//   - An unmatched ")" or "]" is plain text; so is ":<number>)" when no "(" is open, and a ":"
//     not followed by a number and ")" (spaces are not allowed: "(a: 1.2)" is "a: 1.2" ×1.1).
//   - ":<number>)" closes the innermost "(" even when a "[" was opened after it ("(a [b:2)" gives
//     a and b ×2); the "[" stays open.
//   - Brackets still open at the end multiply everything after them: all the "(" first, then all
//     the "[" (outermost first within each kind), by 1.1 or 1/1.1 each ("(a" is a ×1.1).
//   - Adjacent segments with exactly equal weights are merged, so "[(x)]" is weight 1.0 and
//     merges with its neighbours, while (1/1.1)·1.1 products that are not exactly 1 stay apart.
//   - The number is read only when a "(" is open: "x:1.2.3)" alone is plain text, not an error.
//   - Digits are any Unicode decimal digits, as Python's \d and float() accept them ("(a:١.٥)"
//     is a ×1.5).
//   - An empty result (an empty prompt, or brackets only) is one empty segment of weight 1.
func Parse(text string) ([]Segment, error) {
	var res []Segment
	var round, square []int
	multiply := func(start int, m float64) {
		for p := start; p < len(res); p++ {
			res[p].Weight *= m
		}
	}
	for _, loc := range attention.FindAllStringSubmatchIndex(text, -1) {
		tok := text[loc[0]:loc[1]]
		switch {
		case strings.HasPrefix(tok, `\`):
			res = append(res, Segment{tok[1:], 1})
		case tok == "(":
			round = append(round, len(res))
		case tok == "[":
			square = append(square, len(res))
		case loc[2] >= 0 && len(round) > 0:
			w, err := parseFloat(text[loc[2]:loc[3]])
			if err != nil {
				return nil, fmt.Errorf("prompt: weight %q at byte %d: %w", text[loc[2]:loc[3]], loc[2], err)
			}
			multiply(round[len(round)-1], w)
			round = round[:len(round)-1]
		case tok == ")" && len(round) > 0:
			multiply(round[len(round)-1], roundMultiplier)
			round = round[:len(round)-1]
		case tok == "]" && len(square) > 0:
			multiply(square[len(square)-1], squareMultiplier)
			square = square[:len(square)-1]
		default:
			res = append(res, Segment{tok, 1})
		}
	}
	for _, p := range round {
		multiply(p, roundMultiplier)
	}
	for _, p := range square {
		multiply(p, squareMultiplier)
	}
	if len(res) == 0 {
		return []Segment{{"", 1}}, nil
	}
	out := res[:1]
	for _, s := range res[1:] {
		if last := &out[len(out)-1]; last.Weight == s.Weight {
			last.Text += s.Text
		} else {
			out = append(out, s)
		}
	}
	return out, nil
}

// errNotNumber is Python float()'s ValueError.
var errNotNumber = errors.New("not a number")

// parseFloat reads [+-]?[.\p{Nd}]+ as Python's float() does: Unicode decimal digits count as
// their ASCII values; "", ".", "1.2.3" are errors; values beyond float64's range are ±Inf (and
// tiny ones 0), not errors.
func parseFloat(s string) (float64, error) {
	var b strings.Builder
	for _, r := range s {
		if d, ok := digitValue(r); ok {
			r = '0' + d
		}
		b.WriteRune(r)
	}
	v, err := strconv.ParseFloat(b.String(), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, errNotNumber
	}
	return v, nil
}

// digitValue returns the value of a Unicode decimal digit (category Nd, what Python's
// unicodedata.decimal knows). Unicode assigns each script's digits as a run of ten code points
// from zero to nine, and adjacent runs follow one another, so the value is the distance to the
// start of the run of consecutive digits, modulo ten.
func digitValue(r rune) (rune, bool) {
	if !unicode.IsDigit(r) {
		return 0, false
	}
	start := r
	for unicode.IsDigit(start - 1) {
		start--
	}
	return (r - start) % 10, true
}
