package tokenizer

import (
	"strings"
	"sync"
	"unicode/utf8"
)

// byteToUnicode is GPT-2/CLIP's bytes_to_unicode: printable bytes map to
// themselves, the others to U+0100 onwards, so that no byte becomes
// whitespace or a control character.
func byteToUnicode() [256]string {
	var m [256]string
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			m[b] = string(rune(b))
		} else {
			m[b] = string(rune(256 + n))
			n++
		}
	}
	return m
}

// pair is two adjacent BPE symbols.
type pair struct{ a, b string }

// word is the cached result of BPE on one pre-token.
type word struct {
	tokens []string
	ids    []int
}

// maxCacheEntries bounds the BPE cache so that a long-lived Tokenizer fed
// arbitrary text does not grow without limit; past it, results are simply
// not cached (they are still correct).
const maxCacheEntries = 1 << 16

// bpeCache is a concurrency-safe pre-token → BPE result cache.
type bpeCache struct {
	mu sync.RWMutex
	m  map[string]word
}

func (c *bpeCache) get(k string) (word, bool) {
	c.mu.RLock()
	w, ok := c.m[k]
	c.mu.RUnlock()
	return w, ok
}

func (c *bpeCache) put(k string, w word) {
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]word)
	}
	if len(c.m) < maxCacheEntries {
		c.m[k] = w
	}
	c.mu.Unlock()
}

func (c *bpeCache) reset() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// bpe splits a byte-encoded pre-token into vocabulary symbols exactly as
// CLIPTokenizer.bpe does: the last symbol carries "</w>", and the adjacent pair
// with the lowest merge rank is merged (all its non-overlapping occurrences,
// left to right) until no ranked pair is left.
func (t *Tokenizer) bpe(token string) []string {
	// Every symbol, merged or not, is a substring of token+"</w>": merging
	// two neighbours just widens a slice of it, with no allocation.
	full := token + "</w>"
	syms := make([]string, 0, len(token))
	offs := make([]int, 0, len(token))
	for i := 0; i < len(token); {
		_, n := utf8.DecodeRuneInString(token[i:])
		syms = append(syms, full[i:i+n])
		offs = append(offs, i)
		i += n
	}
	syms[len(syms)-1] = full[offs[len(offs)-1]:]
	if len(syms) >= heapThreshold {
		return t.bpeHeap(full, syms, offs)
	}
	return t.bpeLoop(full, syms, offs)
}

// bpeLoop is the reference's loop, transcribed: find the lowest-ranked
// adjacent pair, merge all its occurrences left to right, repeat. offs[i] is
// the offset of syms[i] in full.
func (t *Tokenizer) bpeLoop(full string, syms []string, offs []int) []string {
	for len(syms) > 1 {
		best, bestRank := -1, 0
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := t.ranks[pair{syms[i], syms[i+1]}]; ok && (best < 0 || r < bestRank) {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		first, second := syms[best], syms[best+1]
		w := 0 // merged in place: the write index never passes the read index
		for i := 0; i < len(syms); w++ {
			if i+1 < len(syms) && syms[i] == first && syms[i+1] == second {
				syms[w], offs[w] = full[offs[i]:offs[i]+len(first)+len(second)], offs[i]
				i += 2
			} else {
				syms[w], offs[w] = syms[i], offs[i]
				i++
			}
		}
		syms, offs = syms[:w], offs[:w]
	}
	return syms
}

// encodeWord returns the BPE tokens and ids of one pre-token, through the cache.
func (t *Tokenizer) encodeWord(pre string) word {
	if w, ok := t.cache.get(pre); ok {
		return w
	}
	var enc strings.Builder
	for i := 0; i < len(pre); i++ {
		enc.WriteString(t.byteEnc[pre[i]])
	}
	var toks []string
	if pre == startOfText || pre == endOfText {
		toks = []string{pre} // CLIPTokenizer's cache is seeded with these two
	} else {
		toks = t.bpe(enc.String())
	}
	ids := make([]int, len(toks))
	for i, s := range toks {
		id, ok := t.vocab[s]
		if !ok {
			id = t.unkID
		}
		ids[i] = id
	}
	w := word{tokens: toks, ids: ids}
	t.cache.put(pre, w)
	return w
}
