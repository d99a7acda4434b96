package unet_test

import (
	"context"
	"fmt"
	"log"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/unet"
	"gorgonia.org/tensor"
)

// Load a diffusers unet folder and predict the noise of a 1×4×16×16 latent at t = 981.
func ExampleLoad() {
	m, err := unet.Load(golden.Path("tiny-sd", "unet"))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	cfg := m.Config()
	sample := tensor.New(tensor.WithShape(1, cfg.InChannels, 16, 16), tensor.Of(tensor.Float32))
	text := tensor.New(tensor.WithShape(1, 77, cfg.CrossAttentionDim.At(0)), tensor.Of(tensor.Float32))
	noise, err := m.Forward(context.Background(), sample, 981, text)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(noise.Shape())
	// Output: (1, 4, 16, 16)
}
