package kernels

import "fmt"

// Two queries attend over three keys with one head of dimension 2. The first query points along
// the first key, the second along the third, so each output leans towards that key's value.
func ExampleAttention() {
	p := AttentionParams{Batch: 1, Heads: 1, Nq: 2, Nk: 3, HeadDim: 2, Scale: 4}
	q := []float32{1, 0, 0, 1}
	k := []float32{1, 0, 0, 0, 0, 1}
	v := []float32{10, 0, 0, 0, 0, 10}
	out := make([]float32, 4)
	Attention(p, q, k, v, out)
	fmt.Printf("%.3f\n%.3f\n", out[:2], out[2:])
	// Output:
	// [9.647 0.177]
	// [0.177 9.647]
}
