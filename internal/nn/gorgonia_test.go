package nn

import (
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestGorgoniaStarts guards the go4.org/unsafe/assume-no-moving-gc requirement: without a recent
// enough version, any binary importing gorgonia panics at start on current Go, and this test
// binary would never reach here.
func TestGorgoniaStarts(t *testing.T) {
	g := gorgonia.NewGraph()
	a := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(2, 2), gorgonia.WithName("a"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{1, 2, 3, 4}))))
	b := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(2, 2), gorgonia.WithName("b"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{10, 20, 30, 40}))))
	c := gorgonia.Must(gorgonia.Add(a, b))
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	got := c.Value().Data().([]float32)
	want := []float32{11, 22, 33, 44}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("a+b = %v, want %v", got, want)
		}
	}
}
