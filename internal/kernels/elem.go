package kernels

import (
	"sync"
	"sync/atomic"
)

// elemGrain is the number of elements below which an element-wise kernel stays on one goroutine.
const elemGrain = 1 << 15

// elemOp names the loop an elemJob runs.
type elemOp uint8

const (
	elemOpAdd elemOp = iota
	elemOpScale
	elemOpSigmul
	elemOpGELU
	elemOpGEGLU
	elemOpChannelBias
	elemOpAddRepeat
	elemOpUpsample
	elemOpTranspose
	elemOpLayerNorm
	elemOpGroupNorm
)

// elemJob carries the arguments of an element-wise, activation or norm call to its workers.
// It is pooled, and its run method is handed to parallelFor only when the work is split, so a call
// does not allocate.
type elemJob struct {
	op             elemOp
	dst, a, b, c   []float32
	s              float32 // scale, sigmoid factor or eps
	n1, n2, n3, n4 int     // shape and flags, per op
	items, chunk   int
	next           atomic.Int64 // first item not yet taken
}

var elemJobs = sync.Pool{New: func() any { return new(elemJob) }}

// elemStart returns a cleared job from the pool.
func elemStart(op elemOp) *elemJob {
	j := elemJobs.Get().(*elemJob)
	*j = elemJob{op: op}
	return j
}

// do runs j over items [0, n) in ranges of at least grain, then returns j to the pool. Workers take
// chunks from a shared counter, so that on a busy machine a descheduled worker's share is picked
// up by the others.
func (j *elemJob) do(n, grain int) {
	if nw := min(workers(), (n+grain-1)/max(grain, 1)); nw <= 1 {
		if n > 0 {
			j.run(0, n)
		}
	} else {
		j.items, j.chunk = n, max(grain, n/(4*nw))
		j.next.Store(0)
		parallelFor(nw, 1, j.work)
	}
	*j = elemJob{}
	elemJobs.Put(j)
}

// work is one worker of do.
func (j *elemJob) work(_, _ int) {
	for {
		lo := int(j.next.Add(int64(j.chunk))) - j.chunk
		if lo >= j.items {
			return
		}
		j.run(lo, min(lo+j.chunk, j.items))
	}
}

// run processes the items [lo, hi) of j: elements, rows or tiles depending on the op.
func (j *elemJob) run(lo, hi int) {
	switch j.op {
	case elemOpAdd:
		elemAdd(j.dst[lo:hi], j.a[lo:hi], j.b[lo:hi])
	case elemOpScale:
		elemScale(j.dst[lo:hi], j.a[lo:hi], j.s)
	case elemOpSigmul:
		actSigmulRange(j.dst[lo:hi], j.a[lo:hi], j.s)
	case elemOpGELU:
		actGELURange(j.dst[lo:hi], j.a[lo:hi])
	case elemOpGEGLU:
		actGEGLURows(j.dst, j.a, lo, hi, j.n1)
	case elemOpChannelBias:
		hw, c, perSample := j.n1, j.n2, j.n3 != 0
		for p := lo; p < hi; p++ {
			bi := p % c
			if perSample {
				bi = p
			}
			elemAddScalar(j.dst[p*hw:(p+1)*hw], j.a[p*hw:(p+1)*hw], j.b[bi])
		}
	case elemOpAddRepeat:
		m := len(j.b)
		elemAddRepeat(j.dst[lo*m:hi*m], j.a[lo*m:hi*m], j.b)
	case elemOpUpsample:
		elemUpsampleRows(j.dst, j.a, lo, hi, j.n1)
	case elemOpTranspose:
		elemTransposeTiles(j.dst, j.a, lo, hi, j.n1, j.n2, j.n3, j.n4)
	case elemOpLayerNorm:
		normRows(j.a, j.dst, lo, hi, j.n1, j.s, j.b, j.c)
	case elemOpGroupNorm:
		normGroups(j.a, j.dst, lo, hi, j.n1, j.n2, j.n3, j.s, j.b, j.c, j.n4 != 0)
	}
}

// Add sets dst[i] = a[i] + b[i]. dst may alias a or b.
func Add(dst, a, b []float32) {
	n := len(a)
	j := elemStart(elemOpAdd)
	j.dst, j.a, j.b = dst[:n], a, b[:n]
	j.do(n, elemGrain)
}

// Scale sets dst[i] = src[i]·s. dst may alias src.
func Scale(dst, src []float32, s float32) {
	n := len(src)
	j := elemStart(elemOpScale)
	j.dst, j.a, j.s = dst[:n], src, s
	j.do(n, elemGrain)
}

// AddChannelBias adds a per-channel bias to x (NCHW: n×c×hw) in place: x[i, j, :] += bias[j], or
// bias[i·c + j] when bias has n·c entries (a ResNet's projected time embedding, one per sample).
func AddChannelBias(x []float32, n, c, hw int, bias []float32) {
	AddChannelBiasTo(x, x, n, c, hw, bias)
}

// AddChannelBiasTo is AddChannelBias writing to dst: dst[i, j, :] = x[i, j, :] + bias[j] (or
// bias[i·c + j] when bias has n·c entries). dst may alias x.
func AddChannelBiasTo(dst, x []float32, n, c, hw int, bias []float32) {
	if n*c*hw == 0 {
		return
	}
	_ = x[n*c*hw-1]
	_ = dst[n*c*hw-1]
	_ = bias[c-1]
	j := elemStart(elemOpChannelBias)
	j.dst, j.a, j.b, j.n1, j.n2 = dst, x, bias, hw, c
	if len(bias) >= n*c && n > 1 {
		j.n3 = 1
	}
	j.do(n*c, (elemGrain+hw-1)/hw)
}

// AddRepeat sets dst[i] = a[i] + b[i mod len(b)]: b added to each consecutive len(b)-long piece of a
// (a bias row added to every row, a position embedding to every sample). len(a) must be a multiple
// of len(b). dst may alias a.
func AddRepeat(dst, a, b []float32) {
	m := len(b)
	if len(a) == 0 || m == 0 {
		return
	}
	rows := len(a) / m
	_ = dst[rows*m-1]
	j := elemStart(elemOpAddRepeat)
	j.dst, j.a, j.b = dst, a, b
	j.do(rows, (elemGrain+m-1)/m)
}

// UpsampleNearest2x doubles the height and width of src (nc planes of h×w) by nearest-neighbour
// repetition into dst (nc planes of 2h×2w), as torch's F.interpolate(scale_factor=2, mode="nearest").
func UpsampleNearest2x(dst, src []float32, nc, h, w int) {
	if nc*h*w == 0 {
		return
	}
	_ = src[nc*h*w-1]
	_ = dst[4*nc*h*w-1]
	j := elemStart(elemOpUpsample)
	j.dst, j.a, j.n1 = dst, src, w
	j.do(nc*h, (elemGrain+4*w-1)/(4*w))
}

// elemUpsampleRows writes the two output rows of each source row r in [lo, hi) (rows of w values).
func elemUpsampleRows(dst, src []float32, lo, hi, w int) {
	for r := lo; r < hi; r++ {
		d0 := dst[2*r*2*w : (2*r+1)*2*w]
		elemDup2(d0, src[r*w:(r+1)*w])
		copy(dst[(2*r+1)*2*w:(2*r+2)*2*w], d0)
	}
}

// Transpose writes, for each of batch matrices, dst[b] (cols×rows) = src[b]ᵀ (src[b] is rows×cols,
// row-major). dst must not overlap src.
func Transpose(dst, src []float32, batch, rows, cols int) {
	if batch*rows*cols == 0 {
		return
	}
	_ = src[batch*rows*cols-1]
	_ = dst[batch*rows*cols-1]
	rt := (rows + elemTile - 1) / elemTile
	ct := (cols + elemTile - 1) / elemTile
	j := elemStart(elemOpTranspose)
	j.dst, j.a, j.n1, j.n2, j.n3, j.n4 = dst, src, rows, cols, rt, ct
	j.do(batch*rt*ct, 4)
}

// elemTile is the side of the square tiles Transpose works in.
const elemTile = 32

// elemTransposeTiles transposes tiles [lo, hi) of Transpose: tile t is column tile t%ct of row
// tile t/ct%rt of matrix t/(rt·ct).
func elemTransposeTiles(dst, src []float32, lo, hi, rows, cols, rt, ct int) {
	for t := lo; t < hi; t++ {
		b := t / (rt * ct)
		r0 := (t / ct % rt) * elemTile
		c0 := (t % ct) * elemTile
		r1, c1 := min(r0+elemTile, rows), min(c0+elemTile, cols)
		s := src[b*rows*cols:]
		d := dst[b*rows*cols:]
		if useAVX2 {
			// The 8×8-aligned part of the tile in registers, the ragged edges below.
			r8, c8 := r0+(r1-r0)&^7, c0+(c1-c0)&^7
			if r8 > r0 && c8 > c0 {
				elemTranspose8AVX2(&d[c0*rows+r0], &s[r0*cols+c0], r8-r0, c8-c0, cols, rows)
			}
			elemTransposeGo(d, s, r8, r1, c0, c1, rows, cols)
			elemTransposeGo(d, s, r0, r8, c8, c1, rows, cols)
			continue
		}
		elemTransposeGo(d, s, r0, r1, c0, c1, rows, cols)
	}
}

// elemTransposeGo sets d[c·rows + r] = s[r·cols + c] for r0 ≤ r < r1, c0 ≤ c < c1.
func elemTransposeGo(d, s []float32, r0, r1, c0, c1, rows, cols int) {
	for r := r0; r < r1; r++ {
		for c := c0; c < c1; c++ {
			d[c*rows+r] = s[r*cols+c]
		}
	}
}

// ConcatChannels concatenates a (n×ca×hw) and b (n×cb×hw) along the channel axis into dst
// (n×(ca+cb)×hw), as torch.cat([a, b], dim=1) on NCHW tensors.
func ConcatChannels(dst, a, b []float32, n, ca, cb, hw int) {
	sa, sb := ca*hw, cb*hw
	for i := 0; i < n; i++ {
		copy(dst[i*(sa+sb):i*(sa+sb)+sa], a[i*sa:(i+1)*sa])
		copy(dst[i*(sa+sb)+sa:(i+1)*(sa+sb)], b[i*sb:(i+1)*sb])
	}
}

func elemAdd(dst, a, b []float32) {
	b = b[:len(a)]
	dst = dst[:len(a)]
	if useAVX2 && len(a) >= 8 {
		n := len(a) &^ 7
		elemAddAVX2(&dst[0], &a[0], &b[0], n)
		dst, a, b = dst[n:], a[n:], b[n:]
	}
	for i, v := range a {
		dst[i] = v + b[i]
	}
}

func elemScale(dst, src []float32, s float32) {
	dst = dst[:len(src)]
	if useAVX2 && len(src) >= 8 {
		n := len(src) &^ 7
		elemScaleAVX2(&dst[0], &src[0], n, s)
		dst, src = dst[n:], src[n:]
	}
	for i, v := range src {
		dst[i] = v * s
	}
}

// elemAddScalar sets dst[i] = x[i] + b.
func elemAddScalar(dst, x []float32, b float32) {
	dst = dst[:len(x)]
	if useAVX2 && len(x) >= 8 {
		n := len(x) &^ 7
		elemAddScalarAVX2(&dst[0], &x[0], n, b)
		dst, x = dst[n:], x[n:]
	}
	for i, v := range x {
		dst[i] = v + b
	}
}

// elemAddRepeat sets dst[i] = a[i] + b[i mod len(b)], len(a) a multiple of len(b).
func elemAddRepeat(dst, a, b []float32) {
	m := len(b)
	if useAVX2 && m%8 == 0 {
		elemAddRepeatAVX2(&dst[0], &a[0], &b[0], len(a), m)
		return
	}
	for o := 0; o < len(a); o += m {
		elemAdd(dst[o:o+m], a[o:o+m], b)
	}
}

// elemDup2 sets d[2i] = d[2i+1] = s[i].
func elemDup2(d, s []float32) {
	d = d[:2*len(s)]
	if useAVX2 && len(s) >= 8 {
		n := len(s) &^ 7
		elemDup2AVX2(&d[0], &s[0], n)
		d, s = d[2*n:], s[n:]
	}
	for i, v := range s {
		d[2*i] = v
		d[2*i+1] = v
	}
}
