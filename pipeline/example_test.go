package pipeline_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
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

// Repaint the white part of a mask (inpainting); without Mask this is image-to-image.
func ExamplePipeline_Generate_inpainting() {
	p, err := pipeline.Load("../testdata/tiny-sd")
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	init := image.NewNRGBA(image.Rect(0, 0, 64, 64)) // the picture to change
	mask := image.NewGray(init.Bounds())             // white = repaint
	for y := 16; y < 48; y++ {
		for x := 16; x < 48; x++ {
			mask.SetGray(x, y, color.Gray{255})
		}
	}
	res, err := p.Generate(context.Background(), pipeline.Request{
		Prompt: "a red cube", Steps: 4, Seed: 42, Init: init, Mask: mask, Strength: 0.75,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Images[0].Bounds().Dx(), "x", res.Images[0].Bounds().Dy(), res.Timesteps)
	// Output:
	// 64 x 64 [501 501 251 1]
}
