package tokenizer

import (
	"container/heap"
	"sort"
)

// heapThreshold is the word length (in symbols) from which bpe uses the heap
// version: the plain loop rescans the word after every merge, which costs
// O(n²) per word and is faster only for short words.
const heapThreshold = 48

// mergeCand is a ranked adjacent pair: symbols a at index i and b after it.
type mergeCand struct {
	rank, i int
	a, b    string
}

type candHeap []mergeCand

func (h candHeap) Len() int { return len(h) }
func (h candHeap) Less(x, y int) bool {
	if h[x].rank != h[y].rank {
		return h[x].rank < h[y].rank
	}
	return h[x].i < h[y].i
}
func (h candHeap) Swap(x, y int) { h[x], h[y] = h[y], h[x] }
func (h *candHeap) Push(v any)   { *h = append(*h, v.(mergeCand)) }
func (h *candHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

// bpeHeap gives the same result as bpeLoop in O(n log n): symbols live in a
// linked list, ranked pairs in a heap. As in the reference, every occurrence
// of the lowest-ranked pair is merged, left to right, before any pair formed
// by those merges is considered (the new pairs contain the merged symbol, so
// they can never be the pair being merged).
func (t *Tokenizer) bpeHeap(full string, syms []string, offs []int) []string {
	n := len(syms)
	next := make([]int, n)
	prev := make([]int, n)
	for i := range syms {
		next[i], prev[i] = i+1, i-1
	}
	next[n-1] = -1
	h := make(candHeap, 0, n)
	push := func(i int) {
		if i < 0 || next[i] < 0 {
			return
		}
		a, b := syms[i], syms[next[i]]
		if r, ok := t.ranks[pair{a, b}]; ok {
			heap.Push(&h, mergeCand{r, i, a, b})
		}
	}
	valid := func(c mergeCand) bool {
		j := next[c.i]
		return syms[c.i] == c.a && j >= 0 && syms[j] == c.b
	}
	for i := 0; i+1 < n; i++ {
		push(i)
	}
	var batch []mergeCand
	for h.Len() > 0 {
		top := heap.Pop(&h).(mergeCand)
		if !valid(top) {
			continue
		}
		batch = append(batch[:0], top)
		for h.Len() > 0 && h[0].rank == top.rank {
			batch = append(batch, heap.Pop(&h).(mergeCand))
		}
		// Merged symbols keep the left index, so index order is word order.
		sort.Slice(batch, func(x, y int) bool { return batch[x].i < batch[y].i })
		for _, c := range batch {
			if !valid(c) { // consumed by an overlapping merge, or a duplicate
				continue
			}
			j := next[c.i]
			syms[c.i] = full[offs[c.i] : offs[c.i]+len(c.a)+len(c.b)]
			syms[j] = ""
			next[c.i] = next[j]
			if next[j] >= 0 {
				prev[next[j]] = c.i
			}
			push(prev[c.i])
			push(c.i)
		}
	}
	out := make([]string, 0, n)
	for i := 0; i >= 0; i = next[i] {
		out = append(out, syms[i])
	}
	return out
}
