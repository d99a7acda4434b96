package tokenizer

import (
	"sort"
	"strconv"
	"strings"
	"sync"
)

// nfcData holds the parsed NFC tables. It is built once, on first use, and
// read-only afterwards.
type nfcData struct {
	decomp  map[rune][]rune  // full canonical decomposition
	ccc     map[rune]uint8   // canonical combining class, when non-zero
	compose map[[2]rune]rune // primary composites
}

var nfcOnce = sync.OnceValue(func() *nfcData {
	d := &nfcData{
		decomp:  make(map[rune][]rune, 2100),
		ccc:     make(map[rune]uint8, 1000),
		compose: make(map[[2]rune]rune, 1000),
	}
	eachEntry(nfcDecompositions, func(k, v string) {
		var rs []rune
		for _, h := range strings.Split(v, ".") {
			rs = append(rs, hexRune(h))
		}
		d.decomp[hexRune(k)] = rs
	})
	eachEntry(nfcCombiningClasses, func(k, v string) {
		n, _ := strconv.Atoi(v)
		d.ccc[hexRune(k)] = uint8(n)
	})
	eachEntry(nfcCompositions, func(k, v string) {
		a, b, _ := strings.Cut(k, ".")
		d.compose[[2]rune{hexRune(a), hexRune(b)}] = hexRune(v)
	})
	return d
})

func eachEntry(table string, f func(k, v string)) {
	for _, e := range strings.Split(table, ";") {
		if k, v, ok := strings.Cut(e, ":"); ok {
			f(k, v)
		}
	}
}

func hexRune(h string) rune {
	n, _ := strconv.ParseUint(h, 16, 32)
	return rune(n)
}

// Hangul syllables are composed and decomposed algorithmically (Unicode §3.12).
const (
	hangulSBase  = 0xAC00
	hangulLBase  = 0x1100
	hangulVBase  = 0x1161
	hangulTBase  = 0x11A7
	hangulLCount = 19
	hangulVCount = 21
	hangulTCount = 28
	hangulNCount = hangulVCount * hangulTCount
	hangulSCount = hangulLCount * hangulNCount
)

// nfc returns s in Unicode Normalization Form C, as Python's
// unicodedata.normalize("NFC", s) does.
func nfc(s string) string {
	fast := true
	for i := 0; i < len(s); i++ {
		// Every code point below U+0300 is NFC-stable and a starter.
		if s[i] >= 0xCC {
			fast = false
			break
		}
	}
	if fast {
		return s
	}
	d := nfcOnce()

	// Canonical decomposition.
	rs := make([]rune, 0, len(s))
	for _, r := range s {
		if r >= hangulSBase && r < hangulSBase+hangulSCount {
			si := r - hangulSBase
			rs = append(rs, hangulLBase+si/hangulNCount, hangulVBase+(si%hangulNCount)/hangulTCount)
			if t := si % hangulTCount; t != 0 {
				rs = append(rs, hangulTBase+t)
			}
			continue
		}
		if dec, ok := d.decomp[r]; ok {
			rs = append(rs, dec...)
			continue
		}
		rs = append(rs, r)
	}

	// Canonical ordering: stable sort of each run of non-starters by class.
	for i := 0; i < len(rs); {
		if d.ccc[rs[i]] == 0 {
			i++
			continue
		}
		j := i
		for j < len(rs) && d.ccc[rs[j]] != 0 {
			j++
		}
		run := rs[i:j]
		sort.SliceStable(run, func(a, b int) bool { return d.ccc[run[a]] < d.ccc[run[b]] })
		i = j
	}

	// Canonical composition.
	out := rs[:1]
	starter := 0
	last := int(d.ccc[rs[0]])
	if last != 0 {
		last = 256 // a leading non-starter blocks everything after it
		starter = -1
	}
	for _, r := range rs[1:] {
		cc := int(d.ccc[r])
		if starter >= 0 && (last < cc || last == 0) {
			if c, ok := composePair(d, out[starter], r); ok {
				out[starter] = c
				continue
			}
		}
		if cc == 0 {
			starter = len(out)
		}
		last = cc
		out = append(out, r)
	}
	return string(out)
}

func composePair(d *nfcData, a, b rune) (rune, bool) {
	if a >= hangulLBase && a < hangulLBase+hangulLCount && b >= hangulVBase && b < hangulVBase+hangulVCount {
		return hangulSBase + ((a-hangulLBase)*hangulVCount+(b-hangulVBase))*hangulTCount, true
	}
	if a >= hangulSBase && a < hangulSBase+hangulSCount && (a-hangulSBase)%hangulTCount == 0 &&
		b > hangulTBase && b < hangulTBase+hangulTCount {
		return a + (b - hangulTBase), true
	}
	c, ok := d.compose[[2]rune{a, b}]
	return c, ok
}
