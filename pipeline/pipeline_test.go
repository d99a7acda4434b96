package pipeline

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/scheduler"
)

func TestCancel(t *testing.T) {
	p := testPipeline(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	last := -1
	req := Request{Prompt: "a cat", Steps: 6, Seed: 1, Progress: func(pr Progress) {
		last = pr.Step
		if pr.Step == 2 {
			cancel()
		}
	}}
	res, err := p.Generate(ctx, req)
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Fatalf("Generate after cancel = %v, %v; want nil, context.Canceled", res, err)
	}
	if err != context.Canceled {
		t.Errorf("error %v is not ctx.Err() itself", err)
	}
	if last != 2 {
		t.Errorf("last progress step %d after cancelling at step 2: a UNet call ran after cancellation", last)
	}

	// Already cancelled: nothing runs.
	calls := 0
	req.Progress = func(Progress) { calls++ }
	if _, err := p.Generate(ctx, req); err != context.Canceled {
		t.Errorf("Generate with a cancelled context = %v, want context.Canceled", err)
	}
	if calls > 1 {
		t.Errorf("%d progress calls with a cancelled context", calls)
	}

	// A deadline that passes during the loop.
	dctx, dcancel := context.WithTimeout(context.Background(), time.Hour)
	defer dcancel()
	req.Progress = func(pr Progress) {
		if pr.Step == 1 {
			dcancel()
		}
	}
	if _, err := p.Generate(dctx, req); err != context.Canceled {
		t.Errorf("Generate = %v, want context.Canceled", err)
	}
	tctx, tcancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer tcancel()
	<-tctx.Done()
	if _, err := p.Generate(tctx, Request{Prompt: "x", Steps: 2}); err != context.DeadlineExceeded {
		t.Errorf("Generate past its deadline = %v, want context.DeadlineExceeded", err)
	}
}

func TestProgress(t *testing.T) {
	p := testPipeline(t)
	var seen []Progress
	res, err := p.Generate(context.Background(), Request{Prompt: "a dog", Steps: 3, Seed: 7, NumImages: 2,
		Progress: func(pr Progress) { seen = append(seen, pr) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(res.Timesteps)+1 || len(res.Timings.Steps) != len(res.Timesteps) {
		t.Fatalf("%d progress calls, %d step timings for %d timesteps", len(seen), len(res.Timings.Steps), len(res.Timesteps))
	}
	for i, pr := range seen {
		wantT := res.Timesteps[max(i-1, 0)]
		if pr.Step != i || pr.Total != len(res.Timesteps) || pr.Timestep != wantT {
			t.Errorf("call %d: step %d/%d t=%v, want %d/%d t=%v", i, pr.Step, pr.Total, pr.Timestep, i, len(res.Timesteps), wantT)
		}
		if i > 0 && pr.Elapsed < seen[i-1].Elapsed {
			t.Errorf("call %d: elapsed went back from %v to %v", i, seen[i-1].Elapsed, pr.Elapsed)
		}
		if pr.LatentShape != [4]int{2, 4, 16, 16} || len(pr.Latents) != 2*4*16*16 {
			t.Errorf("call %d: latent shape %v, %d values", i, pr.LatentShape, len(pr.Latents))
		}
	}
	if res.Timings.Total < res.Timings.Denoise || res.Timings.Denoise <= 0 || res.Timings.Decode <= 0 {
		t.Errorf("timings %+v", res.Timings)
	}
	t.Logf("PNDM with 3 steps: timesteps %v", res.Timesteps)
}

// With two images per prompt, the first one's noise is the first half of randn((2,4,h,w)), which
// torch draws exactly as randn((1,4,h,w)): so the first image must be the reference image. This
// checks the batch layout concat[uncond×n, cond×n] and the guidance split.
func TestTwoImagesFirstIsReference(t *testing.T) {
	p := testPipeline(t)
	c := loadCase(t, "e2e.ddim")
	req := c.request(t)
	req.NumImages = 2
	ref := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	steps := ref.Must(t, "e2e.ddim.latents_steps")
	var final []float32
	req.Progress = func(pr Progress) { final = pr.Latents }
	res, err := p.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 {
		t.Fatalf("%d images, want 2", len(res.Images))
	}
	per := 4 * 16 * 16
	last := &golden.Tensor{Shape: []int{1, 4, 16, 16}, Data: steps.Data[len(steps.Data)-per:]}
	golden.Check(t, "first image's final latents", final[:per], last, e2eLatentTol)
	golden.CheckImageU8(t, "first of two images", res.Images[0], ref.Must(t, "e2e.ddim.image_u8"))
	if bytes.Equal(res.Images[0].Pix, res.Images[1].Pix) {
		t.Error("the two images are identical")
	}
}

func TestDefaultsAndRandomSeed(t *testing.T) {
	p := testPipeline(t)
	res, err := p.Generate(context.Background(), Request{Prompt: "a tree", Steps: 2, Seed: -1})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Request
	if r.Width != 128 || r.Height != 128 || r.GuidanceScale != DefaultGuidance || r.Scheduler != "pndm" ||
		r.NumImages != 1 || r.Seed < 0 || r.Progress != nil {
		t.Errorf("resolved request %+v", r)
	}
	if res.Model != "tiny-sd" {
		t.Errorf("Model %q, want tiny-sd", res.Model)
	}
	if b := res.Images[0].Bounds(); b.Dx() != 128 || b.Dy() != 128 {
		t.Errorf("image %v", b)
	}
	again, err := p.Generate(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Images[0].Pix, res.Images[0].Pix) {
		t.Errorf("the reported seed %d does not reproduce the image", r.Seed)
	}
	var zero Request
	zero.Steps = 1
	z, err := p.Generate(context.Background(), zero)
	if err != nil || z.Request.Steps != 1 {
		t.Fatalf("zero request: %v", err)
	}
	if z.Request.Seed != 0 {
		t.Errorf("Seed 0 became %d", z.Request.Seed)
	}
}

// Every scheduler runs, with and without guidance, and euler_a (which draws noise each step) is
// reproducible from its seed.
func TestEverySchedulerRuns(t *testing.T) {
	p := testPipeline(t)
	for _, name := range scheduler.Names() {
		for _, g := range []float64{7.5, 1} {
			req := Request{Prompt: "a red car", NegativePrompt: "blue", Width: 64, Height: 64, Steps: 3,
				GuidanceScale: g, Seed: 3, Scheduler: name}
			a, err := p.Generate(context.Background(), req)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			b, err := p.Generate(context.Background(), req)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !bytes.Equal(a.Images[0].Pix, b.Images[0].Pix) {
				t.Errorf("%s g=%v: same request, different images", name, g)
			}
			t.Logf("%s g=%v: %d UNet calls at %v", name, g, len(a.Timesteps), a.Timesteps)
		}
	}
}

func TestConcurrentGenerate(t *testing.T) {
	p := testPipeline(t)
	reqs := []Request{
		{Prompt: "a house", Width: 64, Height: 64, Steps: 3, Seed: 11},
		{Prompt: "a boat", Width: 128, Height: 64, Steps: 3, Seed: 12, Scheduler: "euler_a"},
		{Prompt: "a house", Width: 64, Height: 64, Steps: 3, Seed: 11, GuidanceScale: 1},
	}
	want := make([][]byte, len(reqs))
	for i, r := range reqs {
		res, err := p.Generate(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = res.Images[0].Pix
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*len(reqs))
	for range 3 {
		for i, r := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := p.Generate(context.Background(), r)
				if err == nil && !bytes.Equal(res.Images[0].Pix, want[i]) {
					err = errors.New("concurrent result differs from the serial one for " + r.Prompt)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestBadRequests(t *testing.T) {
	p := testPipeline(t)
	cases := []struct {
		req   Request
		field string
	}{
		{Request{Width: 130}, "Width"},
		{Request{Width: -8}, "Width"},
		{Request{Height: 4}, "Height"},
		{Request{Height: -64}, "Height"},
		{Request{Steps: -1}, "Steps"},
		{Request{Steps: 1001}, "Steps"}, // more than num_train_timesteps
		{Request{Scheduler: "heun"}, "Scheduler"},
		{Request{NumImages: -2}, "NumImages"},
		{Request{GuidanceScale: math.NaN()}, "GuidanceScale"},
		{Request{GuidanceScale: math.Inf(1)}, "GuidanceScale"},
	}
	for _, c := range cases {
		called := false
		c.req.Progress = func(Progress) { called = true }
		res, err := p.Generate(context.Background(), c.req)
		if err == nil || res != nil {
			t.Errorf("%+v: no error", c.req)
			continue
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("error %q does not name %s", err, c.field)
		}
		if called {
			t.Errorf("%s: progress reported for a bad request", c.field)
		}
		t.Logf("%s: %v", c.field, err)
	}
}

func TestClosed(t *testing.T) {
	p, err := Load(golden.Path("tiny-sd"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := p.Generate(context.Background(), Request{Steps: 1}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Generate after Close: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	p := testPipeline(t)
	good := Components{Tokenizer: p.tok, TextEncoder: p.text, UNet: p.unet, VAE: p.vae, SchedulerConfig: p.sched}
	for field, mutate := range map[string]func(*Components){
		"Tokenizer":   func(c *Components) { c.Tokenizer = nil },
		"TextEncoder": func(c *Components) { c.TextEncoder = nil },
		"UNet":        func(c *Components) { c.UNet = nil },
		"VAE":         func(c *Components) { c.VAE = nil },
		"scheduler":   func(c *Components) { c.Scheduler = "nope" },
	} {
		c := good
		mutate(&c)
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %v", field, err)
		}
	}
	if _, err := New(good); err != nil {
		t.Errorf("New(good): %v", err)
	}
}
