package kernels

import "fmt"

func ExampleSgemm() {
	// C (2×2) = A (2×3) · B (3×2).
	a := []float32{1, 2, 3, 4, 5, 6}
	b := []float32{7, 8, 9, 10, 11, 12}
	c := make([]float32, 4)
	Sgemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2)
	fmt.Println(c)
	// Output: [58 64 139 154]
}

func ExampleConv2D() {
	// One 3×3 image, one 2×2 kernel of ones, no padding: each output sums a 2×2 window, plus 0.5.
	p := ConvParams{N: 1, C: 1, H: 3, W: 3, K: 1, KH: 2, KW: 2, StrideH: 1, StrideW: 1}
	x := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	w := []float32{1, 1, 1, 1}
	oh, ow := p.OutSize()
	y := make([]float32, oh*ow)
	Conv2D(p, x, w, []float32{0.5}, y)
	fmt.Println(oh, ow, y)
	// Output: 2 2 [12.5 16.5 24.5 28.5]
}

func ExampleLinear() {
	// y = x·wᵀ + bias with x 1×2 and w 3×2 (PyTorch layout).
	x := []float32{1, 2}
	w := []float32{1, 0, 0, 1, 1, 1}
	y := make([]float32, 3)
	Linear(x, 1, 2, w, 3, []float32{10, 20, 30}, y)
	fmt.Println(y)
	// Output: [11 22 33]
}
