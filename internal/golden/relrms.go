package golden

import (
	"math"
	"testing"
)

// RelRMS returns the relative RMS error ‖got−want‖₂ / ‖want‖₂ (+Inf on a NaN or a length
// mismatch).
func RelRMS(got []float32, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i, w := range want {
		d := float64(got[i]) - w
		num += d * d
		den += w * w
	}
	r := math.Sqrt(num / math.Max(den, 1e-300))
	if math.IsNaN(r) {
		return math.Inf(1)
	}
	return r
}

// CheckRelRMS compares got with want by relative RMS error (for reduced-precision runs, whose
// errors are spread over every value rather than bounded per element), logs it with the max abs
// error relative to max|want|, and fails the test when it exceeds tol. It returns the relative
// RMS error.
func CheckRelRMS(tb testing.TB, label string, got []float32, want *Tensor, tol float64) float64 {
	tb.Helper()
	r := RelRMS(got, want.Data)
	maxErr, maxRef := MaxAbsDiff(got, want.Data)
	tb.Logf("%s: relative RMS error %.3g (limit %.3g); max abs error %.3g = %.3g of max|ref| %.3g",
		label, r, tol, maxErr, maxErr/math.Max(maxRef, 1e-300), maxRef)
	if !(r <= tol) {
		tb.Errorf("%s: relative RMS error %.3g exceeds %.3g", label, r, tol)
	}
	return r
}
