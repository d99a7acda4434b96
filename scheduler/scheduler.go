// Package scheduler implements the noise schedulers of diffusers v0.21.4 used with Stable
// Diffusion — PNDM (PLMS), DDIM, Euler, Euler ancestral, LMS and DPM++ 2M (with or without
// Karras sigmas) — configured from a model folder's scheduler/scheduler_config.json exactly as
// diffusers' SchedulerClass.from_config reads it, so any of them can be swapped onto a model.
//
// Samples are plain []float32 holding NCHW latents of any shape. The arithmetic follows torch's
// dtypes (float32 tensors, numpy float64 where diffusers uses numpy), so results agree with
// diffusers to about 1e-6.
//
// A Scheduler value is stateful and serves one generation at a time: SetTimesteps starts a
// generation (and resets all state), then ScaleModelInput and Step are called for i = 0, 1, …
// in order. Schedulers are cheap to make — New, or Fresh on an existing one — so use one per
// generation and never share one between goroutines.
package scheduler

import (
	"fmt"
	"sort"

	"github.com/smallsd/smallsd/torchrand"
)

// Scheduler is the interface every scheduler implements. The loop of a pipeline is
//
//	s.SetTimesteps(steps)
//	latents = randn(...) × s.InitNoiseSigma()
//	for i, t := range s.Timesteps() {
//		x := s.ScaleModelInput(latents, i)
//		eps := unet(x, t, ...)
//		latents = s.Step(eps, i, latents, rng)
//	}
//
// Steps are addressed by their index i into Timesteps rather than by timestep value, because
// PNDM repeats a timestep. img2img starts part-way, from an image's latents x0:
//
//	start, err := scheduler.StartIndex(steps, strength)
//	s.SetStart(start)
//	latents = s.AddNoise(x0, randn(...), start)
//	for i := start; i < len(s.Timesteps()); i++ { … the same loop … }
type Scheduler interface {
	// Name is the name New knows this scheduler by.
	Name() string
	// SetTimesteps prepares a generation of the given number of inference steps and resets
	// all per-generation state. steps must be between 1 and num_train_timesteps.
	SetTimesteps(steps int) error
	// Timesteps returns the timesteps to run the model at, in order (a copy). Their number
	// can differ from the steps asked for: PNDM gives steps+1.
	Timesteps() []float64
	// InitNoiseSigma is the factor to multiply standard-normal initial latents by.
	InitNoiseSigma() float32
	// ScaleModelInput returns the model input for step i (a new slice; sample is unchanged).
	ScaleModelInput(sample []float32, i int) ([]float32, error)
	// Step advances sample by step i given the model output at Timesteps()[i] and returns the
	// new sample (a new slice; the arguments are unchanged). Steps must be taken in order.
	// rng is the generation's random source: euler_a needs it (torch.randn noise each
	// step); euler advances it as diffusers does without using the values; the others
	// ignore it and accept nil.
	Step(modelOutput []float32, i int, sample []float32, rng *torchrand.Generator) ([]float32, error)
	// Fresh returns a new scheduler with the same configuration and no timesteps set.
	Fresh() Scheduler
	// SetStart makes step i the generation's first, for img2img and inpainting, which run the
	// end of the schedule (diffusers' loop over scheduler.timesteps[t_start:], see StartIndex).
	// Call it after SetTimesteps and before the first Step; the next Step must then be i.
	// Multistep history starts empty, and PNDM counts its steps from i as diffusers' counter
	// does (its Heun-like first step is made at steps i and i+1).
	SetStart(i int) error
	// AddNoise returns original noised to Timesteps()[i] as diffusers' add_noise does (a new
	// slice): √ᾱ_t·x + √(1−ᾱ_t)·ε for pndm, ddim and the DPM-Solvers, x + σ_i·ε for euler,
	// euler_a and lms, in float32.
	AddNoise(original, noise []float32, i int) ([]float32, error)
}

// SigmaScheduler is implemented by schedulers that have a sigma schedule (euler, euler_a, lms,
// dpmpp_2m, dpmpp_2m_karras); Sigmas returns diffusers' scheduler.sigmas after SetTimesteps.
type SigmaScheduler interface {
	Scheduler
	Sigmas() []float32
}

type constructor func(name string, cfg Config) (Scheduler, error)

var constructors = map[string]constructor{
	"pndm":            newPNDM,
	"ddim":            newDDIM,
	"euler":           newEuler,
	"euler_a":         newEulerAncestral,
	"lms":             newLMS,
	"dpmpp_2m":        newDPM,
	"dpmpp_2m_karras": newDPM,
}

// Names lists the scheduler names New accepts, sorted.
func Names() []string {
	out := make([]string, 0, len(constructors))
	for n := range constructors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// New returns the scheduler called name configured from cfg, as diffusers'
// SchedulerClass.from_config(cfg) would: keys absent from cfg take that scheduler's own
// defaults (e.g. Euler's timestep_spacing "linspace", PNDM's "leading"). dpmpp_2m_karras is
// DPMSolverMultistepScheduler with use_karras_sigmas=True. An unknown name or an unsupported
// config value is an error naming it.
func New(name string, cfg Config) (Scheduler, error) {
	c, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("scheduler: unknown scheduler %q (want one of %v)", name, Names())
	}
	return c(name, cfg)
}

// base holds what every scheduler shares: its name, resolved config, training ᾱ table, the
// current timesteps and the index of the next step.
type base struct {
	name      string
	cfg       Config
	p         params
	ac        []float32 // alphas_cumprod
	timesteps []float64
	steps     int // num_inference_steps as asked
	next      int // index of the next Step
	start     int // index of the first Step (SetStart)
}

func newBase(name, kind string, cfg Config) (base, error) {
	p, err := resolve(kind, cfg)
	if err != nil {
		return base{}, fmt.Errorf("%s: %w", name, err)
	}
	return base{name: name, cfg: cfg, p: p, ac: alphasCumprod(p)}, nil
}

func (b *base) Name() string { return b.name }

func (b *base) Timesteps() []float64 { return append([]float64(nil), b.timesteps...) }

func (b *base) checkSteps(steps int) error {
	if steps < 1 || steps > b.p.numTrain {
		return fmt.Errorf("%s: steps = %d, want 1 to num_train_timesteps (%d)", b.name, steps, b.p.numTrain)
	}
	return nil
}

// checkIndex validates a ScaleModelInput or Step call's index and lengths.
func (b *base) checkIndex(what string, i int, lens ...int) error {
	if b.timesteps == nil {
		return fmt.Errorf("%s: %s before SetTimesteps", b.name, what)
	}
	if i < 0 || i >= len(b.timesteps) {
		return fmt.Errorf("%s: %s index %d out of range [0, %d)", b.name, what, i, len(b.timesteps))
	}
	for _, n := range lens[1:] {
		if n != lens[0] {
			return fmt.Errorf("%s: %s: model output has %d values, sample %d", b.name, what, lens[0], n)
		}
	}
	return nil
}

// checkStep also requires steps in order, since the multistep schedulers keep history.
func (b *base) checkStep(i int, modelOutput, sample []float32) error {
	if err := b.checkIndex("Step", i, len(modelOutput), len(sample)); err != nil {
		return err
	}
	if i != b.next {
		return fmt.Errorf("%s: Step %d called, want step %d next (steps run in order; SetTimesteps restarts)", b.name, i, b.next)
	}
	return nil
}

// checkRange reports timesteps outside [0, num_train_timesteps), which a large steps_offset
// can produce; diffusers would fail indexing its tables.
func (b *base) checkRange(ts []int) error {
	for _, t := range ts {
		if t < 0 || t >= b.p.numTrain {
			return fmt.Errorf("%s: timestep %d out of range [0, %d) (steps_offset %d, timestep_spacing %s)", b.name, t, b.p.numTrain, b.p.stepsOffset, b.p.timestepSpacing)
		}
	}
	return nil
}

// intTimesteps returns diffusers' integer timesteps for DDIM/PNDM in ascending order.
func intTimesteps(p params, n int) []int {
	N := p.numTrain
	out := make([]int, 0, n)
	switch p.timestepSpacing {
	case "linspace":
		for _, v := range npLinspace(0, float64(N-1), n) {
			out = append(out, int(roundEven(v)))
		}
	case "leading":
		ratio := N / n
		for i := 0; i < n; i++ {
			out = append(out, i*ratio+p.stepsOffset)
		}
	case "trailing":
		for _, v := range npArange(float64(N), 0, -float64(N)/float64(n)) {
			out = append(out, int(roundEven(v))-1)
		}
		reverse(out)
	}
	return out
}

func (b *base) params() params { return b.p }
