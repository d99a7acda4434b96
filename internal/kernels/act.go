package kernels

import "math"

// SiLU sets dst[i] = x·sigmoid(x) for x = src[i]. dst may alias src.
func SiLU(dst, src []float32) { actSigmul(dst, src, 1) }

// QuickGELU sets dst[i] = x·sigmoid(1.702·x) for x = src[i] (CLIP's activation). dst may alias src.
func QuickGELU(dst, src []float32) { actSigmul(dst, src, 1.702) }

// actSigmul sets dst[i] = x/(1 + e^(−k·x)), in parallel for long slices.
func actSigmul(dst, src []float32, k float32) {
	j := elemStart(elemOpSigmul)
	j.dst, j.a, j.s = dst[:len(src)], src, k
	j.do(len(src), elemGrain)
}

func actSigmulRange(d, s []float32, k float32) {
	if useAVX2 && len(s) >= 8 {
		m := len(s) &^ 7
		actSigmulAVX2(&d[0], &s[0], m, k)
		d, s = d[m:], s[m:]
	}
	for i, x := range s {
		d[i] = x / (1 + expGo(-k*x))
	}
}

// GELU sets dst[i] = x·Φ(x) = 0.5·x·(1 + erf(x/√2)) for x = src[i], the exact (erf) form that
// torch.nn.functional.gelu computes by default; Φ comes from erfc, so it keeps its relative
// accuracy in the negative tail, and below x = −12 (Φ < 2e-33) the result is −0, as torch's
// float32 gives. dst may alias src.
func GELU(dst, src []float32) {
	j := elemStart(elemOpGELU)
	j.dst, j.a = dst[:len(src)], src
	j.do(len(src), elemGrain)
}

func actGELURange(d, s []float32) {
	if useAVX2 && len(s) >= 8 {
		m := len(s) &^ 7
		actGELUAVX2(&d[0], &s[0], m)
		d, s = d[m:], s[m:]
	}
	for i, x := range s {
		d[i] = actGELUGo(x)
	}
}

// GEGLU computes diffusers' GEGLU gate: src is rows×(2·cols), and row r of dst (rows×cols) is
// src[r, :cols] · gelu(src[r, cols:]). dst may alias src (each dst row lies at or before the src row
// it is computed from, and is written front to back).
func GEGLU(dst, src []float32, rows, cols int) {
	if rows*cols == 0 {
		return
	}
	_ = src[2*rows*cols-1]
	_ = dst[rows*cols-1]
	// Rows are independent, except that in place a row's output overlaps earlier rows' inputs:
	// run in parallel only when dst does not alias src.
	grain := max(1, elemGrain/(2*cols))
	if &dst[0] == &src[0] {
		grain = rows
	}
	j := elemStart(elemOpGEGLU)
	j.dst, j.a, j.n1 = dst, src, cols
	j.do(rows, grain)
}

// actGEGLURows computes rows [lo, hi) of GEGLU.
func actGEGLURows(dst, src []float32, lo, hi, cols int) {
	for r := lo; r < hi; r++ {
		a := src[r*2*cols : r*2*cols+cols]
		g := src[r*2*cols+cols : (r+1)*2*cols]
		d := dst[r*cols : (r+1)*cols]
		if useAVX2 && useAVX512 && useAVX512DQ && len(d) >= 16 {
			m := len(d) &^ 15
			actGEGLU512(&d[0], &a[0], &g[0], m)
			a, g, d = a[m:], g[m:], d[m:]
		}
		if useAVX2 && len(d) >= 8 {
			m := len(d) &^ 7
			actGEGLUAVX2(&d[0], &a[0], &g[0], m)
			a, g, d = a[m:], g[m:], d[m:]
		}
		for i := range d {
			d[i] = a[i] * actGELUGo(g[i])
		}
	}
}

func actSiLUGo(x float32) float32 { return x / (1 + expGo(-x)) }

// actGELUGo is the plain-Go twin of GELU: x·Φ(x) with Φ(x) = ½·erfc(−x/√2), from erfc so that
// Φ keeps its relative accuracy far into the negative tail (where 1 + erf(x) would cancel).
func actGELUGo(x float32) float32 {
	h := 0.5 * actErfcGo(x)
	if math.Signbit(float64(x)) {
		return x * h
	}
	return x * (1 - h)
}

// Coefficients of Numerical Recipes' erfcc: erfc(z) = t·e^(−z² + P(t)), t = 1/(1 + z/2), for
// z ≥ 0, with relative error below 1.2e-7.
const (
	actErfcC0 = -1.26551223
	actErfcC1 = 1.00002368
	actErfcC2 = 0.37409196
	actErfcC3 = 0.09678418
	actErfcC4 = -0.18628806
	actErfcC5 = 0.27886807
	actErfcC6 = -1.13520398
	actErfcC7 = 1.48851587
	actErfcC8 = -0.82215223
	actErfcC9 = 0.17087277

	// actErfcMax bounds |x|: beyond it erfc(|x|/√2) (below 4e-33) is taken as 0, so GELU is x
	// or −0 as diffusers' float32 gives, and the vector code, which works on min(|x|, 12), has
	// no subnormal intermediate: those halved GEGLU's speed on the Zen 5 when many inputs passed
	// 13 (as a UNet with random weights makes them).
	actErfcMax = 12
)

// actErfcGo returns erfc(|x|/√2). The exponent P(t) − x²/2 is formed with x²/2 split exactly
// into hi + lo and the rounding of P(t) − hi recovered (Fast2Sum), so that the float32 rounding of
// a large exponent does not cost relative accuracy in the tail.
func actErfcGo(x float32) float32 {
	if math.Abs(float64(x)) > actErfcMax { // as the vector code (see actErfcMax)
		return 0
	}
	w := 0.5 * x
	hi := x * w
	lo := float32(float64(x)*float64(w) - float64(hi)) // exact: x·w fits in a float64
	z := float32(math.Abs(float64(x))) * (math.Sqrt2 / 2)
	t := 1 / (1 + 0.5*z)
	p := float32(actErfcC9)
	p = p*t + actErfcC8
	p = p*t + actErfcC7
	p = p*t + actErfcC6
	p = p*t + actErfcC5
	p = p*t + actErfcC4
	p = p*t + actErfcC3
	p = p*t + actErfcC2
	p = p*t + actErfcC1
	p = p*t + actErfcC0
	s := p - hi
	c := ((p - s) - hi) - lo
	e := expGo(s)
	return t * (e + e*c)
}
