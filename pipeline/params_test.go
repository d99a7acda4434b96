package pipeline

import (
	"image"
	"testing"
)

func TestResultParameters(t *testing.T) {
	r := &Result{Images: make([]*image.NRGBA, 2), Model: "small-sd", Request: Request{Prompt: "a cat", NegativePrompt: "dog",
		Steps: 20, Scheduler: "euler_a", GuidanceScale: 7, Seed: 5, Width: 512, Height: 384,
		Init: image.NewNRGBA(image.Rect(0, 0, 512, 384)), Strength: 0.5}}
	want := "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7.0, Seed: 5, Size: 512x384, Model: small-sd, " +
		"Denoising strength: 0.5, Batch size: 2, Batch pos: 1"
	if got := r.Parameters(1).String(); got != want {
		t.Errorf("Parameters(1) = %q, want %q", got, want)
	}
	r.Images, r.Request.Init = r.Images[:1], nil
	want = "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7.0, Seed: 5, Size: 512x384, Model: small-sd"
	if got := r.Parameters(0).String(); got != want {
		t.Errorf("Parameters(0) = %q, want %q", got, want)
	}
}
