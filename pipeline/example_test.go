package pipeline_test

import (
	"context"
	"fmt"
	"log"

	"github.com/smallsd/smallsd/pipeline"
)

// Load a model folder (a Hub repo id such as "OFA-Sys/small-stable-diffusion-v0" works too) and
// make an image.
func ExampleLoad() {
	p, err := pipeline.Load("../testdata/tiny-sd")
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	res, err := p.Generate(context.Background(), pipeline.Request{
		Prompt: "a apple, 4k",
		Steps:  4,
		Seed:   42,
	})
	if err != nil {
		log.Fatal(err)
	}
	img := res.Images[0] // *image.NRGBA; png.Encode it, or see package pngmeta
	fmt.Println(img.Bounds().Dx(), "x", img.Bounds().Dy())
	fmt.Println(res.Request.Scheduler, res.Timesteps, res.Request.GuidanceScale)
	// Output:
	// 128 x 128
	// pndm [751 501 501 251 1] 7.5
}
