package kernels

import (
	"math"
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

// Tile sizes. attnBQ is the queries of a tile: a multiple of the AVX2 micro-kernels' 6 rows (row
// layout, attnBK keys a tile, attnNR a panel), and three zmm of lanes (column layout,
// attention_col.go).
const (
	attnBQ = 48
	attnBK = 64 // also LDS in attention_amd64.s
	attnMR = 6
	attnNR = 16
)

// Attention computes out = softmax(Scale·Q·Kᵀ (+ causal mask))·V per batch and head without ever
// forming the Nq×Nk score matrix: queries are processed in tiles of attnBQ rows, keys in tiles of
// attnBK, with a running maximum, running sum and output accumulator per query (the online softmax
// of flash attention). Each worker holds the packed keys and values of one head, O(Nk·HeadDim)
// floats (of all heads when that stays under attnAllHeadsBytes), plus O(attnBQ·(attnBK + HeadDim))
// floats of tiles, from a pool. out may be q itself (each query row block of a head is read into a
// tile before its output is written, and by no other task), but must not overlap k or v.
func Attention(p AttentionParams, q, k, v, out []float32) {
	attention(p, q, k, v, out, false)
}

// attention is Attention, with the bf16 matrix products of AttentionBF16 when bf16 is set.
func attention(p AttentionParams, q, k, v, out []float32, bf16 bool) {
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
	job.p, job.q, job.k, job.v, job.out, job.bf16 = p, q, k, v, out, bf16
	job.nqb = (p.Nq + attnBQ - 1) / attnBQ
	// With few keys (cross-attention), keep every head's keys and values packed and visit the heads
	// of one query tile one after the other: the tile's rows of Q and out are then fetched from
	// memory once for all heads instead of once per head.
	dp := (p.HeadDim + 7) &^ 7
	job.allHeads = p.Heads > 1 && p.Heads*((p.Nk+attnNR-1)&^(attnNR-1))*(p.HeadDim+dp)*4 <= attnAllHeadsBytes
	job.tasks = p.Batch * p.Heads * job.nqb
	if nw := min(workers(), job.tasks); nw <= 1 {
		job.run(0, job.tasks)
	} else {
		// Workers take chunks of tasks from a shared counter rather than a fixed half each: on a
		// busy machine one descheduled worker then does not hold up the whole call.
		job.chunk = max(1, job.tasks/(8*nw))
		job.next.Store(0)
		parallelFor(nw, 1, job.work)
	}
	job.q, job.k, job.v, job.out = nil, nil, nil, nil
	attnJobs.Put(job)
}

// attnJob carries one Attention call's arguments to its workers (pooled so a call does not allocate).
type attnJob struct {
	p            AttentionParams
	q, k, v, out []float32
	nqb          int  // query tiles per (batch, head)
	allHeads     bool // task order (batch, tile, head) with all heads packed, else (batch, head, tile)
	bf16         bool // bf16 products (attention_bf16.go)
	tasks, chunk int
	next         atomic.Int64 // first task not yet taken
}

// attnAllHeadsBytes bounds the packed keys and values of all heads for the (batch, tile, head)
// order: about what the L2 cache holds next to the tiles.
const attnAllHeadsBytes = 512 << 10

var attnJobs = sync.Pool{New: func() any { return new(attnJob) }}

// attnScratch is one worker's memory.
type attnScratch struct {
	kp   []float32 // per packed head, Kᵀ in panels of attnNR keys: panel j is HeadDim×attnNR
	vp   []float32 // per packed head, V as nkPad×dp (dp = HeadDim rounded up to 8, zero padded)
	qt   []float32 // query tile, attnBQ×HeadDim, scaled by Scale·log2(e)
	s    []float32 // score / probability tile, attnBQ×attnBK
	o    []float32 // output accumulator, attnBQ×dp
	m, l []float32 // running max (log2 domain) and running sum per query
	bf   []uint32  // the bf16 path's query and probability tiles and row buffers (attention_bf16.go)
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
	nkPad := (p.Nk + attnNR - 1) &^ (attnNR - 1)
	slots := 1
	if j.allHeads {
		slots = p.Heads
	}
	sc := attnScratches.Get().(*attnScratch)
	sc.kp = attnGrow(sc.kp, slots*nkPad*d)
	sc.vp = attnGrow(sc.vp, slots*nkPad*dp)
	sc.qt = attnGrow(sc.qt, attnBQ*d)
	sc.s = attnGrow(sc.s, attnBQ*max(attnBK, attnKBC))
	sc.o = attnGrow(sc.o, attnBQ*dp)
	sc.m = attnGrow(sc.m, attnBQ)
	sc.l = attnGrow(sc.l, attnBQ)
	return sc
}

// runTasks processes tasks [lo, hi) with scratch sc, whose packed keys and values belong to
// *packed (a batch·Heads + head index, a batch index with allHeads, or −1). Task t is query tile
// t%nqb of head (t/nqb)%Heads of batch t/nqb/Heads, or with allHeads head t%Heads of tile
// (t/Heads)%nqb of batch t/Heads/nqb.
func (j *attnJob) runTasks(sc *attnScratch, packed *int, lo, hi int) {
	p := j.p
	dp := (p.HeadDim + 7) &^ 7
	nkPad := (p.Nk + attnNR - 1) &^ (attnNR - 1)
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
			j.tile(sc, b, h, h, qt*attnBQ, dp, nkPad)
			continue
		}
		b, h, qt = t/(p.Heads*j.nqb), t/j.nqb%p.Heads, t%j.nqb
		if bh := b*p.Heads + h; bh != *packed {
			j.packHead(sc, b, h, 0, dp, nkPad)
			*packed = bh
		}
		j.tile(sc, b, h, 0, qt*attnBQ, dp, nkPad)
	}
}

// packHead copies head h of batch b's keys, transposed into panels, and values into slot of sc.
func (j *attnJob) packHead(sc *attnScratch, b, h, slot, dp, nkPad int) {
	if j.bf16 || attnColumns() {
		j.packHeadCol(sc, b, h, slot, dp, nkPad)
		return
	}
	p := j.p
	d, w := p.HeadDim, p.Heads*p.HeadDim
	k := j.k[b*p.Nk*w+h*d:]
	v := j.v[b*p.Nk*w+h*d:]
	kp := sc.kp[slot*nkPad*d : (slot+1)*nkPad*d]
	vp := sc.vp[slot*nkPad*dp : (slot+1)*nkPad*dp]
	for key := 0; key < nkPad; key++ {
		panel := kp[(key/attnNR)*d*attnNR+key%attnNR:]
		vrow := vp[key*dp : (key+1)*dp]
		if key >= p.Nk {
			for i := 0; i < d; i++ {
				panel[i*attnNR] = 0
			}
			clear(vrow)
			continue
		}
		kr := k[key*w : key*w+d]
		for i, x := range kr {
			panel[i*attnNR] = x
		}
		copy(vrow, v[key*w:key*w+d])
		clear(vrow[d:])
	}
}

// tile computes the outputs of queries q0 … q0+attnBQ−1 (clipped to Nq) of head h of batch b,
// whose keys and values are packed in slot of sc.
func (j *attnJob) tile(sc *attnScratch, b, h, slot, q0, dp, nkPad int) {
	if j.bf16 || attnColumns() {
		j.tileCol(sc, b, h, slot, q0, dp, nkPad)
		return
	}
	// The row layout, for the AVX2 kernels.
	p := j.p
	d, w := p.HeadDim, p.Heads*p.HeadDim
	kp, vp := sc.kp[slot*nkPad*d:], sc.vp[slot*nkPad*dp:]
	nq := min(attnBQ, p.Nq-q0)
	rows := (nq + attnMR - 1) / attnMR * attnMR
	// Scale by log2(e) as well so the softmax can use 2^x.
	qs := p.Scale * math.Log2E
	qsrc := j.q[(b*p.Nq+q0)*w+h*d:]
	j.prefetchNext(b, h, q0, nq)
	for i := 0; i < rows; i++ {
		qr := sc.qt[i*d : (i+1)*d]
		if i >= nq {
			clear(qr)
			continue
		}
		elemScale(qr, qsrc[i*w:i*w+d], qs)
	}
	o, kEnd := sc.startTile(p, rows, dp, q0, nq)
	for k0 := 0; k0 < kEnd; k0 += attnBK {
		nk := min(attnBK, kEnd-k0)
		nkr := (nk + attnNR - 1) &^ (attnNR - 1)
		// Scores S = Q̃·Kᵀ for this key tile, row stride attnBK. Rows of padding queries are zero.
		for c := 0; c < nkr; c += attnNR {
			attnDotAVX2(rows, d, &sc.qt[0], &kp[(k0+c)*d], &sc.s[c], attnBK)
		}
		if nk < nkr || p.Causal {
			attnMask(sc.s, nq, nk, nkr, q0-k0, p.Causal)
		}
		attnSoftmaxAVX2(&sc.s[0], nq, nkr, &sc.m[0], &sc.l[0], &o[0], dp)
		attnAccumAVX2(rows, nk, dp, &sc.s[0], &vp[k0*dp], &o[0])
	}
	dst := j.out[(b*p.Nq+q0)*w+h*d:]
	for i := 0; i < nq; i++ {
		elemScale(dst[i*w:i*w+d], o[i*dp:i*dp+d], 1/sc.l[i])
	}
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

// attnDot sets s[i·lds + c] = Σ_t q[i·d + t]·kp[t·attnNR + c] for i < rows (a multiple of 6) and
// c < attnNR: one panel of scores.
func attnDot(rows, d int, q, kp, s []float32, lds int) {
	for i := 0; i < rows; i++ {
		qr := q[i*d : (i+1)*d]
		var acc [attnNR]float32
		for t, x := range qr {
			kr := kp[t*attnNR : (t+1)*attnNR]
			for c := range acc {
				acc[c] += x * kr[c]
			}
		}
		copy(s[i*lds:i*lds+attnNR], acc[:])
	}
}

// attnMask sets to −Inf the scores of padding keys (columns nk … nkr−1) and, if causal, those of
// keys after the query (column c of row i is masked when c > i + diag). The softmax turns −Inf into
// an exact 0. Every row keeps at least one finite score in the first key tile (key 0), so the
// running maximum is finite from then on.
func attnMask(s []float32, nq, nk, nkr, diag int, causal bool) {
	inf := float32(math.Inf(-1))
	for i := 0; i < nq; i++ {
		valid := nk
		if causal {
			valid = max(0, min(nk, i+diag+1))
		}
		row := s[i*attnBK : i*attnBK+nkr]
		for c := valid; c < nkr; c++ {
			row[c] = inf
		}
	}
}

// attnSoftmax is the online-softmax step for the first nq rows of a score tile s (row stride
// attnBK, n columns): per row i, mNew = max(m[i], max s_i), s_i = 2^(s_i − mNew),
// α = 2^(m[i] − mNew), l[i] = α·l[i] + Σ s_i, m[i] = mNew, and the accumulator row o_i *= α.
func attnSoftmax(s []float32, nq, n int, m, l, o []float32, dp int) {
	for i := 0; i < nq; i++ {
		row := s[i*attnBK : i*attnBK+n]
		mNew := m[i]
		for _, x := range row {
			if x > mNew {
				mNew = x
			}
		}
		var sum float32
		for c, x := range row {
			e := exp2NegGo(x - mNew)
			row[c] = e
			sum += e
		}
		alpha := exp2NegGo(m[i] - mNew)
		m[i] = mNew
		l[i] = l[i]*alpha + sum
		elemScale(o[i*dp:(i+1)*dp], o[i*dp:(i+1)*dp], alpha)
	}
}

// attnAccum adds P·V to o: o[i·dp + c] += Σ_{t<nk} s[i·attnBK + t]·v[t·dp + c] for i < rows and
// c < dp.
func attnAccum(rows, nk, dp int, s, v, o []float32) {
	for i := 0; i < rows; i++ {
		or := o[i*dp : (i+1)*dp]
		for t, pr := range s[i*attnBK : i*attnBK+nk] {
			if pr == 0 {
				continue
			}
			vr := v[t*dp : (t+1)*dp]
			vr = vr[:len(or)] // lets the compiler drop the bounds check below
			for c := range or {
				or[c] += pr * vr[c]
			}
		}
	}
}

// startTile clears the output accumulator and the online-softmax state (running maximum and sum)
// of a query tile's rows, and returns the accumulator and the end of the keys the tile attends to
// (with a causal mask, up to its last query). The float32 and bf16 tiles share it.
func (sc *attnScratch) startTile(p AttentionParams, rows, dp, q0, nq int) (o []float32, kEnd int) {
	o = sc.o[:rows*dp]
	clear(o)
	for i := 0; i < rows; i++ {
		sc.m[i] = float32(math.Inf(-1))
		sc.l[i] = 0
	}
	kEnd = p.Nk
	if p.Causal {
		kEnd = min(p.Nk, q0+nq)
	}
	return o, kEnd
}
