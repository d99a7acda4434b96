package pipeline

import (
	"context"
	"fmt"
	"image"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/smallsd/smallsd/lora"
	"github.com/smallsd/smallsd/safety"
	"github.com/smallsd/smallsd/scheduler"
	"github.com/smallsd/smallsd/torchrand"
	"github.com/smallsd/smallsd/vae"
	"gorgonia.org/tensor"
)

// DefaultSteps is the number of inference steps of a Request that gives none. It is 25, not
// diffusers' 50: on a CPU the UNet calls are nearly all of the time, and with the default PNDM
// (PLMS, a 4th-order multistep method) or DPM++ 2M the image has converged by 25 steps — it
// differs from the 50-step one in fine detail, not in content — so 50 would double the wait for
// little. Ask for 50 to reproduce diffusers' default exactly.
const DefaultSteps = 25

// DefaultGuidance is the classifier-free guidance scale of a Request that gives none (diffusers'
// default).
const DefaultGuidance = 7.5

// Request describes the images to make. A zero Width, Height, Steps, GuidanceScale, Scheduler or
// NumImages means its default; Seed 0 is an ordinary seed.
type Request struct {
	// Prompt is what the image should show. Like diffusers, the pipeline keeps its first 75
	// tokens (77 with the start and end tokens) and drops the rest, unless PromptSyntax says
	// otherwise.
	//
	// NegativePrompt is what the unconditional half of classifier-free guidance is conditioned
	// on; "" conditions it on the empty prompt, as diffusers does when there is none. Without
	// guidance it is not used.
	Prompt, NegativePrompt string
	// Width and Height are the image size in pixels: positive multiples of 8; 0 means the model's
	// default (DefaultSize: the UNet's sample_size × 8).
	Width, Height int
	// Steps is the number of inference steps (≥ 1); 0 means DefaultSteps. Some schedulers call
	// the UNet a different number of times (PNDM: Steps+1); Result.Timesteps has them all.
	Steps int
	// GuidanceScale is the classifier-free guidance scale g; 0 means DefaultGuidance. A value ≤ 1
	// (1 by convention) turns guidance off: one UNet pass per step on the prompt alone, as in
	// diffusers.
	GuidanceScale float64
	// Seed seeds torch's CPU generator (only its low 32 bits matter, as in torch); a negative
	// seed asks for a random one, reported in Result.Request.Seed. Seed 0 is a seed like any other.
	Seed int64
	// Scheduler names the scheduler (see scheduler.Names: pndm, ddim, euler, euler_a, lms,
	// dpmpp_2m, dpmpp_2m_karras); "" means the model's own (Pipeline.DefaultScheduler).
	Scheduler string
	// NumImages is how many images to make from the prompt in one batch (≥ 1); 0 means 1.
	// Their initial latents are drawn together, as diffusers' num_images_per_prompt does.
	NumImages int
	// Progress, if not nil, is called from Generate's goroutine once before the first UNet
	// call and after every denoising step.
	Progress func(Progress)
	// PreviewEvery, when positive, puts pictures of the images so far in Progress.Previews every
	// PreviewEvery steps and at the last (see Pipeline.Preview: TAESD when the Pipeline has one,
	// else LinearPreview). Each TAESD preview of a 512×512 image costs about a tenth of a step.
	PreviewEvery int
	// LoRAs are adapters applied to this request only, to the UNet and the text encoder alike
	// (see LoRA); none costs nothing, and the next request without them gets the base model's
	// images exactly.
	LoRAs []LoRA

	lora *requestLoRA // resolved LoRAs, set by resolve
	// PromptSyntax is how Prompt and NegativePrompt are read: PromptSyntaxDiffusers ("", plain
	// text cut to 75 tokens) or PromptSyntaxA1111 ("a1111": weights such as "(word:1.3)" and
	// up to 225 tokens).
	PromptSyntax string

	// Init, if not nil, makes this image-to-image: the images start from Init's latents noised
	// to the point Strength gives instead of from noise (diffusers' Img2Img pipeline), and a zero
	// Width/Height means Init's, rounded down to a multiple of 8; Init (and Mask) are resized to
	// Width×Height with PIL's Lanczos filter when their size differs.
	Init image.Image
	// Strength, with Init, is the part of the schedule run, in (0, 1]: about Strength × Steps
	// UNet calls; near 0 keeps Init, 1 redraws it from (almost) pure noise. 0 means
	// DefaultStrength.
	Strength float64
	// Mask, with Init, makes this inpainting (diffusers' Inpaint pipeline on a regular UNet):
	// where Mask is white (luma ≥ 128) the picture is repainted, where it is black Init is kept.
	// It must be Init's size (and is resized with it).
	Mask image.Image
	// PasteOriginal, with Mask, copies Init's pixels outside the mask into the images, which
	// otherwise show the kept region as the VAE reproduces it (diffusers' output).
	PasteOriginal bool
}

// Progress reports the denoising loop's state to Request.Progress.
type Progress struct {
	// Step is the number of steps (UNet calls) done: 0 before the first, then 1 … Total.
	Step, Total int
	// Timestep is the timestep of the step just done (of the first one when Step is 0).
	Timestep float64
	// Elapsed is the time since the denoising loop started.
	Elapsed time.Duration
	// Latents are the latents after the step (the initial noise when Step is 0), NCHW with
	// shape LatentShape. The slice is the pipeline's own, never modified afterwards: read it,
	// keep it if you like, but do not write to it.
	Latents     []float32
	LatentShape [4]int
	// Previews are pictures of the images so far, one per image, on the steps
	// Request.PreviewEvery asks for; nil on the others (and when a preview failed).
	Previews []*image.NRGBA
}

// Result holds the images and what made them.
type Result struct {
	Images []*image.NRGBA
	// Request is the request as run: defaults filled in, the seed chosen, Progress cleared.
	Request Request
	// Model is the Pipeline's Name.
	Model string
	// Timesteps are the timesteps of the UNet calls, in order.
	Timesteps []float64
	Timings   Timings
	// NSFW says, per image, whether the safety checker flagged it (the image is then black);
	// nil when the pipeline has no checker. Safety has the checker's verdicts, which name the
	// concepts that fired.
	NSFW   []bool
	Safety []safety.Result
}

// Timings are the wall-clock times of a generation's stages.
type Timings struct {
	Text    time.Duration   // tokenizing and the text encoder
	Denoise time.Duration   // the denoising loop
	Steps   []time.Duration // each denoising step (UNet and scheduler)
	Encode  time.Duration   // the VAE encoder and image preparation (img2img, inpainting)
	Decode  time.Duration   // the VAE decoder and conversion to images
	Safety  time.Duration   // the safety checker (0 without one)
	Total   time.Duration
}

// resolve fills in defaults and checks the request; errors name the field.
func (p *Pipeline) resolve(req Request) (Request, error) {
	r := req
	if err := checkLimits(r); err != nil {
		return r, err
	}
	if err := p.resolveImage(&r); err != nil {
		return r, err
	}
	if err := p.resolveLoRAs(&r); err != nil {
		return r, err
	}
	dw, dh := p.DefaultSize()
	if r.Width == 0 {
		r.Width = dw
	}
	if r.Height == 0 {
		r.Height = dh
	}
	f := p.vae.Config().UpscaleFactor()
	if r.Width <= 0 || r.Width%f != 0 {
		return r, fmt.Errorf("pipeline: Request.Width %d is not a positive multiple of %d", req.Width, f)
	}
	if r.Height <= 0 || r.Height%f != 0 {
		return r, fmt.Errorf("pipeline: Request.Height %d is not a positive multiple of %d", req.Height, f)
	}
	if r.Steps == 0 {
		r.Steps = DefaultSteps
	}
	if r.Steps < 1 {
		return r, fmt.Errorf("pipeline: Request.Steps %d is less than 1", req.Steps)
	}
	if r.GuidanceScale == 0 {
		r.GuidanceScale = DefaultGuidance
	}
	if r.NumImages == 0 {
		r.NumImages = 1
	}
	if r.NumImages < 0 {
		return r, fmt.Errorf("pipeline: Request.NumImages %d is less than 1", req.NumImages)
	}
	if r.Scheduler == "" {
		r.Scheduler = p.defaultScheduler
	}
	if !slices.Contains(scheduler.Names(), r.Scheduler) {
		return r, fmt.Errorf("pipeline: Request.Scheduler %q is unknown (known: %s)", req.Scheduler,
			strings.Join(scheduler.Names(), ", "))
	}
	if err := checkPromptSyntax(r.PromptSyntax); err != nil {
		return r, err
	}
	if r.Seed < 0 {
		r.Seed = int64(rand.Uint32()) // torch uses the low 32 bits; a 32-bit seed is the whole story
	}
	return r, nil
}

// Generate makes req.NumImages images. It returns ctx.Err() when ctx is cancelled (checked
// before every UNet call and inside the models, so it stops within one UNet call), and an error
// naming the field for a bad request. It is safe to call from several goroutines.
func (p *Pipeline) Generate(ctx context.Context, req Request) (*Result, error) {
	if p.isClosed() {
		return nil, fmt.Errorf("pipeline: Generate: %w", ErrClosed)
	}
	start := time.Now()
	r, err := p.resolve(req)
	if err != nil {
		return nil, err
	}
	sched, err := scheduler.New(r.Scheduler, p.sched)
	if err != nil {
		return nil, fmt.Errorf("pipeline: Request.Scheduler: %w", err)
	}
	if err := sched.SetTimesteps(r.Steps); err != nil {
		return nil, fmt.Errorf("pipeline: Request.Steps: %w", err)
	}
	first, err := p.setStart(r, sched)
	if err != nil {
		return nil, err
	}
	res := &Result{Request: r, Model: p.name, Timesteps: sched.Timesteps()[first:]}
	res.Request.Progress, res.Request.lora = nil, nil
	cfg := r.GuidanceScale > 1

	text, err := p.encodeText(ctx, r, cfg)
	if err != nil {
		return nil, p.ctxErr(ctx, err)
	}
	res.Timings.Text = time.Since(start)
	p.endStage(p.text, false)
	if err := p.checkBudget(r, text.Shape()[0], text.Shape()[1]); err != nil {
		return nil, p.ctxErr(ctx, err)
	}

	latents, shape, src, err := p.denoise(ctx, r, sched, first, text, cfg, &res.Timings)
	if err != nil {
		return nil, p.ctxErr(ctx, err)
	}
	text = nil
	p.endStage(p.unet, true)

	t0 := time.Now()
	if res.Images, err = p.decode(ctx, latents, shape); err != nil {
		return nil, p.ctxErr(ctx, err)
	}
	src.pasteOriginal(res.Images)
	res.Timings.Decode = time.Since(t0)
	if p.tiny == nil {
		p.endStage(p.vae, true)
	}
	if err := p.checkSafety(ctx, res); err != nil {
		return nil, p.ctxErr(ctx, err)
	}
	res.Timings.Total = time.Since(start)
	return res, nil
}

// ctxErr returns ctx.Err() in place of err once ctx is done, so callers can compare with
// context.Canceled and context.DeadlineExceeded whatever stage noticed.
func (p *Pipeline) ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// encodeText returns the UNet's text input: concat[uncond×n, cond×n] with guidance, else cond×n
// (n = NumImages), each row 77 hidden states of the text encoder (77·k with PromptSyntaxA1111).
func (p *Pipeline) encodeText(ctx context.Context, r Request, cfg bool) (*tensor.Dense, error) {
	var states *tensor.Dense
	var err error
	if r.PromptSyntax == PromptSyntaxA1111 {
		if states, err = p.encodeWeighted(ctx, r, cfg); err != nil {
			return nil, err
		}
	} else {
		ids := [][]int{p.tok.EncodePadded(r.Prompt, p.maxLength)}
		if cfg {
			ids = [][]int{p.tok.EncodePadded(r.NegativePrompt, p.maxLength), ids[0]}
		}
		if states, err = r.lora.encoder(p.text).Encode(ctx, ids); err != nil {
			return nil, fmt.Errorf("pipeline: text encoder: %w", err)
		}
	}
	shape := states.Shape()
	P, L, D := shape[0], shape[1], shape[2]
	rows := states.Data().([]float32)
	n := r.NumImages
	out := make([]float32, 0, P*n*L*D)
	for i := range P { // each prompt's row repeated n times, as diffusers' repeat/view does
		for range n {
			out = append(out, rows[i*L*D:(i+1)*L*D]...)
		}
	}
	return tensor.New(tensor.WithShape(P*n, L, D), tensor.WithBacking(out)), nil
}

// latentShape is the shape of the latents of r's images: n × in_channels × h/8 × w/8.
func (p *Pipeline) latentShape(r Request) [4]int {
	f := p.vae.Config().UpscaleFactor()
	return [4]int{r.NumImages, p.unet.Config().InChannels, r.Height / f, r.Width / f}
}

// denoise draws the initial latents (from noise, or from r.Init's latents for img2img and
// inpainting, whose source it returns) and runs the scheduler loop from step first.
func (p *Pipeline) denoise(ctx context.Context, r Request, sched scheduler.Scheduler, first int, text *tensor.Dense, cfg bool, tm *Timings) ([]float32, [4]int, *imageSource, error) {
	shape := p.latentShape(r)
	gen := torchrand.New(uint64(r.Seed))
	var latents []float32
	var src *imageSource
	if r.Init != nil {
		t0 := time.Now()
		var err error
		if src, latents, err = p.prepareImage(ctx, r, sched, first, gen, shape); err != nil {
			return nil, shape, nil, err
		}
		tm.Encode = time.Since(t0)
	} else {
		latents = gen.Randn(shape[:]...)
		sigma := sched.InitNoiseSigma()
		for i := range latents {
			latents[i] *= sigma
		}
	}
	ts := sched.Timesteps()
	start := time.Now()
	report := func(step int, t float64) {
		if r.Progress != nil {
			r.Progress(Progress{Step: step, Total: len(ts) - first, Timestep: t, Elapsed: time.Since(start),
				Latents: latents, LatentShape: shape, Previews: p.stepPreviews(ctx, r, step, len(ts)-first, latents, shape)})
		}
	}
	report(0, ts[first])
	batch := shape
	if cfg {
		batch[0] *= 2
	}
	g := float32(r.GuidanceScale)
	for i := first; i < len(ts) && !src.keepsAll(); i++ {
		t := ts[i]
		if err := ctx.Err(); err != nil {
			return nil, shape, nil, err
		}
		if p.isClosed() {
			return nil, shape, nil, fmt.Errorf("pipeline: Generate at step %d: %w", i, ErrClosed)
		}
		t0 := time.Now()
		x, err := sched.ScaleModelInput(latents, i)
		if err != nil {
			return nil, shape, nil, fmt.Errorf("pipeline: scheduler at step %d: %w", i, err)
		}
		if cfg {
			x = append(x, x...) // concat[latents, latents]: the same input for both halves
		}
		out, err := p.unet.ForwardLoRA(ctx, tensor.New(tensor.WithShape(batch[:]...), tensor.WithBacking(x)), t, text, r.lora.updates(lora.UNet))
		if err != nil {
			return nil, shape, nil, fmt.Errorf("pipeline: UNet at step %d (t=%v): %w", i, t, err)
		}
		eps := out.Data().([]float32)
		if cfg {
			eps = guide(eps, g)
		}
		if latents, err = sched.Step(eps, i, latents, gen); err != nil {
			return nil, shape, nil, fmt.Errorf("pipeline: scheduler at step %d: %w", i, err)
		}
		if latents, err = src.blend(sched, i, latents); err != nil {
			return nil, shape, nil, err
		}
		tm.Steps = append(tm.Steps, time.Since(t0))
		p.stepDone()
		report(i+1-first, t)
	}
	if src.keepsAll() {
		latents = src.latents
		report(len(ts)-first, ts[len(ts)-1])
	}
	tm.Denoise = time.Since(start)
	return latents, shape, src, nil
}

// guide splits the UNet output of the batch concat[uncond, cond] and returns
// ε_u + g·(ε_c − ε_u), each operation rounded to float32 as torch computes it (the conversion
// keeps the compiler from fusing the multiply and add).
func guide(eps []float32, g float32) []float32 {
	n := len(eps) / 2
	u, c := eps[:n], eps[n:]
	out := make([]float32, n)
	for i := range out {
		out[i] = u[i] + float32(g*(c[i]-u[i]))
	}
	return out
}

// decode turns the final latents (NCHW of shape) into images: latents / scaling_factor (in
// float32, as torch divides), the VAE decoder, then diffusers' postprocess.
func (p *Pipeline) decode(ctx context.Context, latents []float32, shape [4]int) ([]*image.NRGBA, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.tiny != nil {
		return p.decodeTiny(ctx, p.tiny, latents, shape)
	}
	sf := float32(p.vae.Config().ScalingFactor)
	z := make([]float32, len(latents))
	for i, v := range latents {
		z[i] = v / sf
	}
	x, err := p.vae.Decode(ctx, tensor.New(tensor.WithShape(shape[:]...), tensor.WithBacking(z)))
	if err != nil {
		return nil, fmt.Errorf("pipeline: VAE decoder: %w", err)
	}
	imgs, err := vae.ToImages(x)
	if err != nil {
		return nil, fmt.Errorf("pipeline: VAE output: %w", err)
	}
	return imgs, nil
}
