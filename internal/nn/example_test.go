package nn_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Example builds a ResNet block from (synthetic) weights, adds it to a graph, compiles the graph
// and runs it twice.
func Example() {
	w := weights.NewSynthetic().View() // a real model: weights.Open(dir) then .View()
	res, err := nn.NewResnetBlock2D(w.Sub("down_blocks.0").Sub("resnets.0"), 8,
		nn.ResnetBlock2DConfig{Out: 16, TembChannels: 32, Groups: 4, Eps: 1e-5})
	if err != nil {
		fmt.Println(err)
		return
	}
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(2, 8, 4, 4), gorgonia.WithName("x"))
	temb := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(2, 32), gorgonia.WithName("temb"))
	y, err := res.Forward(x, temb)
	if err != nil {
		fmt.Println(err)
		return
	}
	prog, err := nn.Compile(g, []*gorgonia.Node{x, temb}, []*gorgonia.Node{y})
	if err != nil {
		fmt.Println(err)
		return
	}
	xv := tensor.New(tensor.WithShape(2, 8, 4, 4), tensor.WithBacking(make([]float32, 2*8*4*4)))
	tv := tensor.New(tensor.WithShape(2, 32), tensor.WithBacking(make([]float32, 2*32)))
	for step := 0; step < 2; step++ {
		out, err := prog.Run(context.Background(), xv, tv)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(out[0].Shape()) // valid until the next Run
	}
	fmt.Println(prog.PeakBytes() > 0)
	// Output:
	// (2, 16, 4, 4)
	// (2, 16, 4, 4)
	// true
}

// ExampleRunner runs a model (here one Linear layer on synthetic weights) through a Runner: a
// program is compiled per input shape on first use, outputs belong to the caller, and every
// call after Close returns nn.ErrClosed.
func ExampleRunner() {
	w := weights.NewSynthetic().View()
	lin, err := nn.NewLinear(w.Sub("proj"), 4, 3, true)
	if err != nil {
		fmt.Println(err)
		return
	}
	r := nn.NewRunner("proj", func(shapes ...tensor.Shape) (*nn.Program, error) {
		g := gorgonia.NewGraph()
		x := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(shapes[0]...), gorgonia.WithName("x"))
		y, err := lin.Forward(x)
		if err != nil {
			return nil, err
		}
		return nn.Compile(g, []*gorgonia.Node{x}, []*gorgonia.Node{y})
	}) // a model made from a file passes nn.WithRelease(store.Close)
	for _, rows := range []int{2, 5} {
		x := tensor.New(tensor.WithShape(rows, 4), tensor.WithBacking(make([]float32, rows*4)))
		out, err := r.Run(context.Background(), x)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(out[0].Shape())
	}
	r.Close()
	_, err = r.Run(context.Background(), tensor.New(tensor.WithShape(2, 4), tensor.WithBacking(make([]float32, 8))))
	fmt.Println(errors.Is(err, nn.ErrClosed))
	// Output:
	// (2, 3)
	// (5, 3)
	// true
}
