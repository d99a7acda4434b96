package pngmeta_test

import (
	"bytes"
	"fmt"
	"image"

	"github.com/smallsd/smallsd/pipeline/pngmeta"
)

// Write an image with its generation parameters, then read them back.
func ExampleEncodeWithText() {
	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	p := pngmeta.Parameters{
		Prompt: "a apple, 4k", Steps: 25, Sampler: "PNDM", CFGScale: 7.5, Seed: 42,
		Width: 8, Height: 8, Model: "small-stable-diffusion-v0",
	}
	var buf bytes.Buffer
	if err := pngmeta.EncodeWithText(&buf, img, pngmeta.Text{Keyword: pngmeta.ParametersKeyword, Value: p.String()}); err != nil {
		panic(err)
	}
	back, err := pngmeta.ReadParameters(&buf)
	if err != nil {
		panic(err)
	}
	fmt.Println(back)
	fmt.Println(back.Seed, back.Width, back.Height)
	// Output:
	// a apple, 4k
	// Steps: 25, Sampler: PNDM, CFG scale: 7.5, Seed: 42, Size: 8x8, Model: small-stable-diffusion-v0
	// 42 8 8
}
