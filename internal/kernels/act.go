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
// torch.nn.functional.gelu computes by default. dst may alias src.
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
		if useAVX2 && cols >= 8 {
			m := cols &^ 7
			actGEGLUAVX2(&d[0], &a[0], &g[0], m)
			a, g, d = a[m:], g[m:], d[m:]
		}
		for i := range d {
			d[i] = a[i] * actGELUGo(g[i])
		}
	}
}

func actSiLUGo(x float32) float32 { return x / (1 + expGo(-x)) }

// actGELUGo is the plain-Go twin of GELU. erf comes from actErfGo, the same rational approximation
// the vector code uses.
func actGELUGo(x float32) float32 { return 0.5 * x * (1 + actErfGo(x*math.Sqrt2/2)) }

// Coefficients of a rational approximation erf(x) ≈ x·P(x²)/Q(x²) on |x| ≤ 4 (the one Eigen and
// XLA use for float32; absolute error about 1e-7). Beyond 4, erf(x) = ±1 in float32.
const (
	actErfA1  = -2.72614225801306e-10
	actErfA3  = 2.77068142495902e-08
	actErfA5  = -2.10102402082508e-06
	actErfA7  = -5.69250639462346e-05
	actErfA9  = -7.34990630326855e-04
	actErfA11 = -2.95459980854025e-03
	actErfA13 = -1.60960333262415e-02
	actErfB0  = -1.45660718464996e-05
	actErfB2  = -2.13374055278905e-04
	actErfB4  = -1.68282697438203e-03
	actErfB6  = -7.37332916720468e-03
	actErfB8  = -1.42647390514189e-02
)

func actErfGo(x float32) float32 {
	if x > 4 {
		x = 4
	}
	if x < -4 {
		x = -4
	}
	x2 := x * x
	p := float32(actErfA1)
	p = p*x2 + actErfA3
	p = p*x2 + actErfA5
	p = p*x2 + actErfA7
	p = p*x2 + actErfA9
	p = p*x2 + actErfA11
	p = p*x2 + actErfA13
	q := float32(actErfB0)
	q = q*x2 + actErfB2
	q = q*x2 + actErfB4
	q = q*x2 + actErfB6
	q = q*x2 + actErfB8
	return x * p / q
}
