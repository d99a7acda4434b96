package kernels

import (
	"math"
	"testing"
)

func TestTinyVAEElementwise(t *testing.T) {
	n := 3*elemGrain + 7 // several goroutines and a ragged end
	a, b := make([]float32, n), make([]float32, n)
	for i := range a {
		a[i] = float32(math.Sin(float64(i))) * 4
		b[i] = float32(math.Cos(float64(i)*0.7)) * 3
	}
	got := make([]float32, n)
	ReLU(got, a)
	for i, x := range a {
		if want := float32(math.Max(float64(x), 0)); got[i] != want {
			t.Fatalf("ReLU[%d] = %v, want %v", i, got[i], want)
		}
	}
	AddReLU(got, a, b)
	for i := range a {
		if want := float32(math.Max(float64(a[i]+b[i]), 0)); got[i] != want {
			t.Fatalf("AddReLU[%d] = %v, want %v", i, got[i], want)
		}
	}
	AddScale(got, a, -0.5, 2)
	for i, x := range a {
		if want := 2*x - 1; got[i] != want { // 2x is exact, so (x − 0.5)·2 rounds like 2x − 1
			t.Fatalf("AddScale[%d] = %v, want %v", i, got[i], want)
		}
	}
	SoftClamp(got[:100], a[:100], 3)
	for i, x := range a[:100] {
		if want := math.Tanh(float64(x)/3) * 3; math.Abs(float64(got[i])-want) > 1e-6 {
			t.Fatalf("SoftClamp[%d] = %v, want %v", i, got[i], want)
		}
	}
	ReLU(a, a) // in place
	for _, x := range a {
		if x < 0 {
			t.Fatal("ReLU in place left a negative value")
		}
	}
}
