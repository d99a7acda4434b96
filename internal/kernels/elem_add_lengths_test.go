package kernels

import "testing"

// TestAddEveryLength guards the AVX2 add loop's odd-block path: lengths with an odd number of
// 8-float blocks (24, 40, …) once ran past the slices' end or left elements wrong.
func TestAddEveryLength(t *testing.T) {
	for n := 0; n <= 300; n++ {
		a := make([]float32, n+8)
		b := make([]float32, n+8)
		dst := make([]float32, n+8)
		for i := range a {
			a[i] = float32(i)
			b[i] = float32(2 * i)
			dst[i] = -1
		}
		Add(dst[:n], a[:n], b[:n])
		for i := 0; i < n; i++ {
			if dst[i] != float32(3*i) {
				t.Fatalf("n=%d: dst[%d] = %v, want %v", n, i, dst[i], float32(3*i))
			}
		}
		for i := n; i < n+8; i++ {
			if dst[i] != -1 {
				t.Fatalf("n=%d: wrote past the end at %d", n, i)
			}
		}
	}
}
