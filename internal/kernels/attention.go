package kernels

import (
	"sync"
	"sync/atomic"
)

// AttentionParams describes multi-head scaled dot-product attention. Q is Batch×Nq×(Heads·HeadDim)
// row-major, K and V are Batch×Nk×(Heads·HeadDim); head h uses columns h·HeadDim … (h+1)·HeadDim−1
// (the layout a Linear projection produces, so no permute is needed). Out has Q's layout.
type AttentionParams struct {
	Batch, Heads, Nq, Nk, HeadDim int
	Scale                         float32 // usually 1/sqrt(HeadDim)
	Causal                        bool    // query i attends to keys 0..i only (CLIP's text encoder)
}

// attnBQ is the queries of a tile: three zmm or six ymm of lanes (attention_col.go).
const attnBQ = 48

// Attention computes out = softmax(Scale·Q·Kᵀ (+ causal mask))·V per batch and head without ever
// forming the Nq×Nk score matrix: queries are processed in tiles of attnBQ rows, keys in tiles of
// attnKeyTile, with a running maximum, running sum and output accumulator per query (the online softmax
// of flash attention). Each worker holds the packed keys and values of one head, O(Nk·HeadDim)
// floats (of all heads when that stays under attnAllHeadsBytes), plus O(attnBQ·(attnKBC + HeadDim))
// floats of tiles, from a pool. out may be q itself (each query row block of a head is read into a
// tile before its output is written, and by no other task), but must not overlap k or v.
func Attention(p AttentionParams, q, k, v, out []float32) {
	attention(p, q, k, v, out, false, nil)
}

// attention is Attention, with the bf16 matrix products of AttentionBF16 when bf16 is set, on
// AMX tiles with the kernel amx when it is not nil (attention_amx.go).
func attention(p AttentionParams, q, k, v, out []float32, bf16 bool, amx amxKernelFunc) {
	if p.Batch*p.Heads*p.Nq == 0 {
		return
	}
	w := p.Heads * p.HeadDim
	_ = q[p.Batch*p.Nq*w-1]
	_ = out[p.Batch*p.Nq*w-1]
	if p.Nk == 0 {
		clear(out[:p.Batch*p.Nq*w])
		return
	}
	_ = k[p.Batch*p.Nk*w-1]
	_ = v[p.Batch*p.Nk*w-1]
	job := attnJobs.Get().(*attnJob)
	job.p, job.q, job.k, job.v, job.out, job.bf16, job.amx = p, q, k, v, out, bf16 || amx != nil, amx
	job.nqb = (p.Nq + job.taskQueries() - 1) / job.taskQueries()
	// With few keys (cross-attention), keep every head's keys and values packed and visit the heads
	// of one query tile one after the other: the tile's rows of Q and out are then fetched from
	// memory once for all heads instead of once per head.
	dp := (p.HeadDim + 7) &^ 7
	job.allHeads = p.Heads > 1 && p.Heads*((p.Nk+attnKP-1)&^(attnKP-1))*(p.HeadDim+dp)*4 <= attnAllHeadsBytes
	job.tasks = p.Batch * p.Heads * job.nqb
	if job.amx != nil {
		job.roundKV()
	}
	if nw := min(workers(), job.tasks); nw <= 1 {
		job.run(0, job.tasks)
	} else {
		// Workers take chunks of tasks from a shared counter rather than a fixed half each: on a
		// busy machine one descheduled worker then does not hold up the whole call.
		job.chunk = max(1, job.tasks/(8*nw))
		job.next.Store(0)
		parallelFor(nw, 1, job.work)
	}
	job.releaseKV()
	job.q, job.k, job.v, job.out, job.amx = nil, nil, nil, nil, nil
	attnJobs.Put(job)
}

// attnJob carries one Attention call's arguments to its workers (pooled so a call does not allocate).
type attnJob struct {
	p            AttentionParams
	q, k, v, out []float32
	nqb          int           // query tiles per (batch, head)
	allHeads     bool          // task order (batch, tile, head) with all heads packed, else (batch, head, tile)
	bf16         bool          // bf16 products (attention_bf16.go)
	amx          amxKernelFunc // their tile kernel on AMX (attention_amx.go), or nil
	kb, vb       []uint16      // k and v rounded to bf16 for the AMX path (roundKV)
	kvb          *[]uint16     // their pooled buffer
	tasks, chunk int
	next         atomic.Int64 // first task not yet taken
}

// attnAllHeadsBytes bounds the packed keys and values of all heads for the (batch, tile, head)
// order: about what the L2 cache holds next to the tiles.
const attnAllHeadsBytes = 512 << 10

var attnJobs = sync.Pool{New: func() any { return new(attnJob) }}

// attnScratch is one worker's memory.
type attnScratch struct {
	kp   []float32 // per packed head, the keys in panels (attention_col.go)
	vp   []float32 // per packed head, V as nkPad×dp (dp = HeadDim rounded up to 8, zero padded)
	qt   []float32 // query tile Q̃^T, HeadDim rows of attnBQ, scaled by Scale·log2(e)
	s    []float32 // score / probability tile S^T, attnKBC rows of attnBQ
	o    []float32 // output accumulator O^T, dp rows of attnBQ
	m, l []float32 // running max (log2 domain) and running sum per query
	bf   []uint32  // the bf16 path's query and probability tiles and row buffers (attention_bf16.go)
	pt   []float32 // the AMX path's probability tiles P^T, bf16 key pairs (attention_amx.go)
	amx  amxBatch  // the AMX path's tile calls (attention_amx.go)
}

var attnScratches = sync.Pool{New: func() any { return new(attnScratch) }}

func attnGrow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// run processes tasks [lo, hi) on the calling goroutine.
func (j *attnJob) run(lo, hi int) {
	sc := j.scratch()
	packed := -1
	j.runTasks(sc, &packed, lo, hi)
	attnScratches.Put(sc)
}

// work is one worker: it takes chunks of tasks until none is left.
func (j *attnJob) work(_, _ int) {
	sc := j.scratch()
	packed := -1
	for {
		t0 := int(j.next.Add(int64(j.chunk))) - j.chunk
		if t0 >= j.tasks {
			break
		}
		j.runTasks(sc, &packed, t0, min(t0+j.chunk, j.tasks))
	}
	attnScratches.Put(sc)
}

// scratch returns a worker's memory from the pool, sized for j.
func (j *attnJob) scratch() *attnScratch {
	p := j.p
	d := p.HeadDim
	dp := (d + 7) &^ 7
	nkPad := (p.Nk + attnKP - 1) &^ (attnKP - 1)
	slots := 1
	if j.allHeads {
		slots = p.Heads
	}
	sc := attnScratches.Get().(*attnScratch)
	sc.kp = attnGrow(sc.kp, slots*nkPad*d)
	sc.vp = attnGrow(sc.vp, slots*nkPad*dp)
	sc.qt = attnGrow(sc.qt, attnBQ*d)
	sc.s = attnGrow(sc.s, attnBQ*attnKBC)
	sc.o = attnGrow(sc.o, attnBQ*dp)
	sc.m = attnGrow(sc.m, attnBQ)
	sc.l = attnGrow(sc.l, attnBQ)
	if j.amx != nil {
		j.attnAMXScratch(sc, slots)
	}
	return sc
}

// runTasks processes tasks [lo, hi) with scratch sc, whose packed keys and values belong to
// *packed (a batch·Heads + head index, a batch index with allHeads, or −1). Task t is query tile
// t%nqb of head (t/nqb)%Heads of batch t/nqb/Heads, or with allHeads head t%Heads of tile
// (t/Heads)%nqb of batch t/Heads/nqb.
func (j *attnJob) runTasks(sc *attnScratch, packed *int, lo, hi int) {
	p := j.p
	dp := (p.HeadDim + 7) &^ 7
	nkPad := (p.Nk + attnKP - 1) &^ (attnKP - 1)
	for t := lo; t < hi; t++ {
		var b, h, qt int
		if j.allHeads {
			b, qt, h = t/(p.Heads*j.nqb), t/p.Heads%j.nqb, t%p.Heads
			if b != *packed {
				for hh := 0; hh < p.Heads; hh++ {
					j.packHead(sc, b, hh, hh, dp, nkPad)
				}
				*packed = b
			}
			j.tile(sc, b, h, h, qt*j.taskQueries(), dp, nkPad)
			continue
		}
		b, h, qt = t/(p.Heads*j.nqb), t/j.nqb%p.Heads, t%j.nqb
		if bh := b*p.Heads + h; bh != *packed {
			j.packHead(sc, b, h, 0, dp, nkPad)
			*packed = bh
		}
		j.tile(sc, b, h, 0, qt*j.taskQueries(), dp, nkPad)
	}
}

// taskQueries is the queries of a task: a query tile, or on AMX amxHalves of them.
func (j *attnJob) taskQueries() int {
	if j.amx != nil {
		return attnBQ * j.amxHalves()
	}
	return attnBQ
}

// packHead packs head h of batch b's keys and values into slot of sc for tile.
func (j *attnJob) packHead(sc *attnScratch, b, h, slot, dp, nkPad int) {
	if j.amx != nil {
		j.packHeadAMX(sc, b, h, slot)
		return
	}
	j.packHeadCol(sc, b, h, slot, dp, nkPad)
}

// tile computes the outputs of the query tile from q0 of head h of batch b.
func (j *attnJob) tile(sc *attnScratch, b, h, slot, q0, dp, nkPad int) {
	if j.amx != nil {
		j.tileAMX(sc, b, h, slot, q0)
		return
	}
	j.tileCol(sc, b, h, slot, q0, dp, nkPad)
}

// prefetchNext asks for the query and output rows of the tile processed after (b, h, q0) while this
// one computes: they are strided rows that the hardware prefetcher does not follow, and for
// cross-attention fetching them costs as much as the arithmetic. With allHeads, the next tile's rows
// are fetched for all heads at once, when the first head of this tile starts.
func (j *attnJob) prefetchNext(b, h, q0, nq int) {
	p := j.p
	w := p.Heads * p.HeadDim
	n0, n := q0+nq, min(attnBQ, p.Nq-q0-nq)
	if n <= 0 {
		return
	}
	off, bytes := (b*p.Nq+n0)*w+h*p.HeadDim, 4*p.HeadDim
	if j.allHeads {
		if h != 0 {
			return
		}
		off, bytes = (b*p.Nq+n0)*w, 4*w
	}
	attnPrefetch(&j.q[off], n, 4*w, bytes)
	attnPrefetch(&j.out[off], n, 4*w, bytes)
}
