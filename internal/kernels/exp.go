package kernels

import "math"

// Exp sets dst[i] = e^src[i]. dst may alias src. Relative error is within a few ulp; results
// below about e^-103 flush to zero, above e^88.72 become +Inf, and NaN propagates.
func Exp(dst, src []float32) {
	n := len(src)
	dst = dst[:n]
	if useAVX2 && n >= 8 {
		m := n &^ 7
		expAVX2(&dst[0], &src[0], m)
		dst, src = dst[m:], src[m:]
	}
	for i, x := range src {
		dst[i] = expGo(x)
	}
}

// Constants of the exp approximation (Cephes expf): e^x = 2^n · e^r with n = round(x·log2 e) and
// r = x − n·ln2 split in two parts for accuracy, then a degree-7 polynomial for e^r.
const (
	expLog2e = 1.44269504088896341
	expLn2Hi = 0.693359375
	expLn2Lo = -2.12194440e-4
	expMax   = 88.8   // beyond this the result overflows to +Inf
	expMin   = -104.0 // below this the result underflows to 0
	expP0    = 1.9875691500e-4
	expP1    = 1.3981999507e-3
	expP2    = 8.3334519073e-3
	expP3    = 4.1665795894e-2
	expP4    = 1.6666665459e-1
	expP5    = 5.0000001201e-1
)

// expGo is the plain-Go twin of the vector exp: the same range reduction and polynomial.
func expGo(x float32) float32 {
	if x != x {
		return x
	}
	if x > expMax {
		x = expMax
	}
	if x < expMin {
		x = expMin
	}
	n := float32(math.RoundToEven(float64(x * expLog2e)))
	r := x - n*expLn2Hi
	r -= n * expLn2Lo
	n1 := int32(n) >> 1
	return expPoly(r) * expPow2(n1) * expPow2(int32(n)-n1)
}

// expPoly returns e^r for |r| ≤ ln2/2.
func expPoly(r float32) float32 {
	p := float32(expP0)
	p = p*r + expP1
	p = p*r + expP2
	p = p*r + expP3
	p = p*r + expP4
	p = p*r + expP5
	return p*r*r + r + 1
}

// expPow2 returns 2^n for n in [-126, 127]. expGo scales by 2^n as 2^(n/2)·2^(n−n/2), one factor
// at a time, so that results down to the subnormal range and up to overflow come out right.
func expPow2(n int32) float32 { return math.Float32frombits(uint32(n+127) << 23) }
