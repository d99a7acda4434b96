package pipeline_test

import (
	"context"
	"fmt"
	"log"

	"github.com/smallsd/smallsd/pipeline"
)

// Apply a LoRA file to one request; the next request without it gets the base model.
func ExampleLoRA() {
	p, err := pipeline.Load("../testdata/tiny-sd")
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	res, err := p.Generate(context.Background(), pipeline.Request{
		Prompt: "a apple, 4k", Width: 64, Height: 64, Steps: 4, Seed: 42,
		LoRAs: []pipeline.LoRA{{Path: "../testdata/lora/lora-kohya.safetensors", Scale: 0.7}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Parameters(0).Prompt)
	// Output: a apple, 4k <lora:lora-kohya:0.7>
}

// Load a single-file checkpoint with the configs of a diffusers folder.
func ExampleWithConfigFrom() {
	p, err := pipeline.Load("../testdata/single-file/tiny-sd.ldm.safetensors", pipeline.WithConfigFrom("../testdata/tiny-sd"))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	fmt.Println(p.Name(), p.DefaultScheduler())
	// Output: tiny-sd.ldm pndm
}
