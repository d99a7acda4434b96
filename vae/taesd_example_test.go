package vae_test

import (
	"context"
	"fmt"

	"github.com/smallsd/smallsd/vae"
	"gorgonia.org/tensor"
)

func ExampleLoadTiny() {
	taesd, err := vae.LoadTiny("../testdata/taesd-tiny") // or a download of madebyollin/taesd
	if err != nil {
		panic(err)
	}
	defer taesd.Close()
	// TAESD decodes the diffusion latents as they are: its scaling_factor is 1.
	latents := tensor.New(tensor.WithShape(1, 4, 8, 8), tensor.WithBacking(make([]float32, 4*8*8)))
	x, err := taesd.Decode(context.Background(), latents)
	if err != nil {
		panic(err)
	}
	imgs, err := vae.ToImages(x)
	if err != nil {
		panic(err)
	}
	fmt.Println(imgs[0].Bounds())
	// Output: (0,0)-(64,64)
}
