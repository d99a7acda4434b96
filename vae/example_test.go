package vae_test

import (
	"context"
	"fmt"
	"log"
	"path/filepath"

	"github.com/smallsd/smallsd/vae"
	"gorgonia.org/tensor"
)

// Decode latents (already divided by the scaling factor) and turn them into images.
func ExampleDecoder_Decode() {
	d, err := vae.LoadDecoder(filepath.Join("..", "testdata", "tiny-sd", "vae"))
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	latents := tensor.New(tensor.WithShape(1, 4, 8, 12), tensor.Of(tensor.Float32)) // zeros
	x, err := d.Decode(context.Background(), latents)
	if err != nil {
		log.Fatal(err)
	}
	imgs, err := vae.ToImages(x)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(x.Shape(), len(imgs), imgs[0].Bounds().Dx(), imgs[0].Bounds().Dy())
	// Output: (1, 3, 64, 96) 1 96 64
}
