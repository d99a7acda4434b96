package pipeline

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// TestGoldenLPW runs the whole lpw_stable_diffusion reference (testdata/wave3-lpw-taesd.*: a
// 108-token weighted prompt, a weighted negative prompt, PNDM, 6 steps) with PromptSyntaxA1111 and
// checks the UNet's text input, every step's latents and the image. The reference decodes with
// (1/0.18215)·latents, a multiplication, where the pipeline divides (as StableDiffusionPipeline
// does); the two differ by at most 2.4e-6 after the decoder, far inside one 8-bit level.
func TestGoldenLPW(t *testing.T) {
	data, err := os.ReadFile(golden.Path("wave3-lpw-taesd.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases struct {
		LPW struct {
			E2E struct {
				Prompt         string `json:"prompt"`
				NegativePrompt string `json:"negative_prompt"`
				Steps          int
				Guidance       float64
				Seed           int64
				Height, Width  int
				Scheduler      string `json:"scheduler_class"`
			} `json:"e2e"`
		} `json:"lpw"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	c := cases.LPW.E2E
	if c.Steps != 6 || c.Seed != 2023 || !strings.Contains(c.Prompt, "(highly detailed:1.2)") {
		t.Fatalf("unexpected e2e case %+v", c)
	}
	p := testPipeline(t)
	sched, err := SchedulerForClass(c.Scheduler, p.sched)
	if err != nil {
		t.Fatal(err)
	}
	ref := golden.MustOpen(t, golden.Path("wave3-lpw-taesd.safetensors"))
	req := Request{Prompt: c.Prompt, NegativePrompt: c.NegativePrompt, Steps: c.Steps, GuidanceScale: c.Guidance,
		Seed: c.Seed, Width: c.Width, Height: c.Height, Scheduler: sched, PromptSyntax: PromptSyntaxA1111}

	r, err := p.resolve(req)
	if err != nil {
		t.Fatal(err)
	}
	text, err := p.encodeText(context.Background(), r, true)
	if err != nil {
		t.Fatal(err)
	}
	embeds := ref.Must(t, "lpw.e2e.prompt_embeds")
	if !text.Shape().Eq(embeds.Shape) {
		t.Fatalf("text input shape %v, want %v", text.Shape(), embeds.Shape)
	}
	golden.Check(t, "lpw.e2e.prompt_embeds", text.Float32s(), embeds, 3e-5) // 2.1e-6 measured

	init := ref.Must(t, "lpw.e2e.latents_init")
	steps := ref.Must(t, "lpw.e2e.latents_steps")
	per := len(init.Data)
	var got [][]float32
	req.Progress = func(pr Progress) { got = append(got, pr.Latents) }
	res, err := p.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	wantTS := ref.Must(t, "lpw.e2e.timesteps").Ints()
	if len(got) != len(wantTS)+1 || len(res.Timesteps) != len(wantTS) {
		t.Fatalf("%d progress calls and %d timesteps, want %d and %d", len(got), len(res.Timesteps), len(wantTS)+1, len(wantTS))
	}
	golden.Check(t, "lpw.e2e.latents_init", got[0], init, 1e-6)
	worst := 0.0
	for i := range wantTS {
		s := &golden.Tensor{Name: steps.Name, Shape: init.Shape, Data: steps.Data[i*per : (i+1)*per]}
		worst = math.Max(worst, golden.Check(t, "lpw.e2e.latents_steps["+itoa(i)+"]", got[i+1], s, e2eLatentTol))
	}
	t.Logf("lpw.e2e: largest latent error over %d steps %.3g", len(wantTS), worst)
	golden.CheckImageU8(t, "lpw.e2e.image_u8", res.Images[0], ref.Must(t, "lpw.e2e.image_u8"))
	if res.Request.PromptSyntax != PromptSyntaxA1111 {
		t.Errorf("Result.Request.PromptSyntax = %q", res.Request.PromptSyntax)
	}
}

func TestPromptSyntaxErrors(t *testing.T) {
	p := testPipeline(t)
	ctx := context.Background()
	_, err := p.Generate(ctx, Request{Prompt: "a", Steps: 1, Width: 64, Height: 64, PromptSyntax: "compel"})
	if err == nil || !strings.Contains(err.Error(), "PromptSyntax") {
		t.Errorf("unknown syntax: %v", err)
	}
	_, err = p.Generate(ctx, Request{Prompt: "(a:1.2.3)", Steps: 1, Width: 64, Height: 64, PromptSyntax: PromptSyntaxA1111})
	if err == nil || !strings.Contains(err.Error(), "1.2.3") {
		t.Errorf("bad weight: %v", err)
	}
	// Without guidance the prompt alone is encoded; NumImages repeats it.
	res, err := p.Generate(ctx, Request{Prompt: strings.Repeat("(red) cube, ", 30), Steps: 1, Width: 64, Height: 64,
		GuidanceScale: 1, NumImages: 2, PromptSyntax: PromptSyntaxA1111})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 {
		t.Errorf("%d images, want 2", len(res.Images))
	}
}
