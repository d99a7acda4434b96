package kernels

// elemGrain is the number of elements below which an element-wise kernel stays on one goroutine.
const elemGrain = 1 << 15

// Add sets dst[i] = a[i] + b[i]. dst may alias a or b.
func Add(dst, a, b []float32) {
	n := len(a)
	dst, b = dst[:n], b[:n]
	parallelFor(n, elemGrain, func(lo, hi int) { elemAdd(dst[lo:hi], a[lo:hi], b[lo:hi]) })
}

// Scale sets dst[i] = src[i]·s. dst may alias src.
func Scale(dst, src []float32, s float32) {
	n := len(src)
	dst = dst[:n]
	parallelFor(n, elemGrain, func(lo, hi int) { elemScale(dst[lo:hi], src[lo:hi], s) })
}

// AddChannelBias adds a per-(sample, channel) bias to x (NCHW: n×c×hw) in place:
// x[i, j, :] += bias[i·c + j]. bias has n·c entries (a ResNet's projected time embedding); a plain
// per-channel bias is the case n = 1, or a bias slice repeated per sample.
func AddChannelBias(x []float32, n, c, hw int, bias []float32) {
	if n*c*hw == 0 {
		return
	}
	_ = x[n*c*hw-1]
	_ = bias[n*c-1]
	grain := (elemGrain + hw - 1) / hw
	parallelFor(n*c, grain, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			elemAddScalar(x[p*hw:(p+1)*hw], bias[p])
		}
	})
}

// UpsampleNearest2x doubles the height and width of src (nc planes of h×w) by nearest-neighbour
// repetition into dst (nc planes of 2h×2w), as torch's F.interpolate(scale_factor=2, mode="nearest").
func UpsampleNearest2x(dst, src []float32, nc, h, w int) {
	if nc*h*w == 0 {
		return
	}
	_ = src[nc*h*w-1]
	_ = dst[4*nc*h*w-1]
	rows := nc * h
	grain := (elemGrain + 4*w - 1) / (4 * w)
	parallelFor(rows, grain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			s := src[r*w : (r+1)*w]
			d0 := dst[2*r*2*w : (2*r+1)*2*w]
			elemDup2(d0, s)
			copy(dst[(2*r+1)*2*w:(2*r+2)*2*w], d0)
		}
	})
}

// Transpose writes, for each of batch matrices, dst[b] (cols×rows) = src[b]ᵀ (src[b] is rows×cols,
// row-major). dst must not overlap src.
func Transpose(dst, src []float32, batch, rows, cols int) {
	if batch*rows*cols == 0 {
		return
	}
	_ = src[batch*rows*cols-1]
	_ = dst[batch*rows*cols-1]
	const tile = 32
	rt := (rows + tile - 1) / tile
	ct := (cols + tile - 1) / tile
	parallelFor(batch*rt*ct, 4, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			b := t / (rt * ct)
			r0 := (t / ct % rt) * tile
			c0 := (t % ct) * tile
			r1, c1 := min(r0+tile, rows), min(c0+tile, cols)
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
	})
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

func elemAddScalar(x []float32, b float32) {
	if useAVX2 && len(x) >= 8 {
		n := len(x) &^ 7
		elemAddScalarAVX2(&x[0], n, b)
		x = x[n:]
	}
	for i := range x {
		x[i] += b
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
