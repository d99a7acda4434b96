package scheduler

import (
	"fmt"

	"github.com/smallsd/smallsd/torchrand"
)

// kdiff holds what diffusers' k-diffusion style schedulers (EulerDiscreteScheduler,
// EulerAncestralDiscreteScheduler, LMSDiscreteScheduler) share: fractional float64 timesteps,
// float32 sigmas interpolated from the training sigmas (plus a final 0), and inputs scaled by
// 1/√(σ²+1).
type kdiff struct {
	base
	sigmas []float32 // len(timesteps)+1, descending, last 0
}

func newKdiff(name, kind string, cfg Config) (kdiff, error) {
	b, err := newBase(name, kind, cfg)
	return kdiff{base: b}, err
}

// setSigmas is the shared part of set_timesteps.
func (s *kdiff) setSigmas(steps int) error {
	if err := s.checkSteps(steps); err != nil {
		return err
	}
	ts := spacedTimesteps(s.p, steps)
	for i, t := range ts {
		ts[i] = float64(float32(t)) // diffusers makes them np.float32
	}
	train := trainSigmas(s.ac)
	sig := make([]float64, len(ts))
	for i, t := range ts {
		sig[i] = npInterp(t, train)
	}
	if s.p.useKarras {
		logs := logSigmas32(train)
		sig = karrasSigmas(sig, steps)
		for i, v := range sig {
			ts[i] = sigmaToT(v, logs)
		}
	}
	s.sigmas = make([]float32, len(sig)+1)
	for i, v := range sig {
		s.sigmas[i] = float32(v)
	}
	s.timesteps, s.steps, s.next, s.start = ts, steps, 0, 0
	return nil
}

// Sigmas returns diffusers' scheduler.sigmas (a copy).
func (s *kdiff) Sigmas() []float32 { return append([]float32(nil), s.sigmas...) }

// InitNoiseSigma is max σ for linspace/trailing spacing and √(max σ² + 1) for leading, in
// float32. Before SetTimesteps it is 1.
func (s *kdiff) InitNoiseSigma() float32 {
	var m float32
	for _, v := range s.sigmas {
		m = max(m, v)
	}
	if s.sigmas == nil {
		return 1
	}
	if s.p.timestepSpacing == "linspace" || s.p.timestepSpacing == "trailing" {
		return m
	}
	return sqrt32(m*m + 1)
}

func (s *kdiff) ScaleModelInput(sample []float32, i int) ([]float32, error) {
	if err := s.checkIndex("ScaleModelInput", i, len(sample)); err != nil {
		return nil, err
	}
	sigma := s.sigmas[i]
	d := sqrt32(sigma*sigma + 1)
	out := make([]float32, len(sample))
	for k, v := range sample {
		out[k] = v / d
	}
	return out, nil
}

// predX0 is the denoised sample for σ (diffusers' pred_original_sample) in float32.
func (s *kdiff) predX0(modelOutput, sample []float32, sigma float32) []float32 {
	out := make([]float32, len(sample))
	if s.p.predictionType == "v_prediction" {
		s2 := sigma*sigma + 1
		c := -sigma / sqrt32(s2)
		for k, x := range sample {
			out[k] = modelOutput[k]*c + x/s2
		}
		return out
	}
	for k, x := range sample {
		out[k] = x - sigma*modelOutput[k]
	}
	return out
}

// euler is diffusers' EulerDiscreteScheduler (s_churn = 0).
type euler struct{ kdiff }

func newEuler(name string, cfg Config) (Scheduler, error) {
	k, err := newKdiff(name, "euler", cfg)
	if err != nil {
		return nil, err
	}
	return &euler{k}, nil
}

func (s *euler) Fresh() Scheduler {
	f, _ := newEuler(s.name, s.cfg)
	return f
}

func (s *euler) SetTimesteps(steps int) error { return s.setSigmas(steps) }

// Step is one Euler step. diffusers draws (and, with s_churn = 0, ignores) a noise tensor in
// every step; rng, when given, is advanced the same way so a shared generator stays in step.
func (s *euler) Step(modelOutput []float32, i int, sample []float32, rng *torchrand.Generator) ([]float32, error) {
	if err := s.checkStep(i, modelOutput, sample); err != nil {
		return nil, err
	}
	if rng != nil {
		rng.FillNormal(make([]float32, len(sample)))
	}
	sigma := s.sigmas[i]
	x0 := s.predX0(modelOutput, sample, sigma)
	dt := s.sigmas[i+1] - sigma
	out := make([]float32, len(sample))
	for k, x := range sample {
		d := (x - x0[k]) / sigma
		out[k] = x + d*dt
	}
	s.next++
	return out, nil
}

// eulerAncestral is diffusers' EulerAncestralDiscreteScheduler.
type eulerAncestral struct{ kdiff }

func newEulerAncestral(name string, cfg Config) (Scheduler, error) {
	k, err := newKdiff(name, "euler_a", cfg)
	if err != nil {
		return nil, err
	}
	return &eulerAncestral{k}, nil
}

func (s *eulerAncestral) Fresh() Scheduler {
	f, _ := newEulerAncestral(s.name, s.cfg)
	return f
}

func (s *eulerAncestral) SetTimesteps(steps int) error { return s.setSigmas(steps) }

// Step is one ancestral Euler step: a deterministic step to σ_down, then fresh noise of
// standard deviation σ_up drawn from rng exactly as torch.randn(shape, generator=rng).
func (s *eulerAncestral) Step(modelOutput []float32, i int, sample []float32, rng *torchrand.Generator) ([]float32, error) {
	if err := s.checkStep(i, modelOutput, sample); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("%s: Step needs a random generator (rng is nil)", s.name)
	}
	sigma := s.sigmas[i]
	x0 := s.predX0(modelOutput, sample, sigma)
	from, to := sigma, s.sigmas[i+1]
	up := sqrt32(to * to * (from*from - to*to) / (from * from))
	down := sqrt32(to*to - up*up)
	dt := down - sigma
	noise := make([]float32, len(sample))
	rng.FillNormal(noise)
	out := make([]float32, len(sample))
	for k, x := range sample {
		d := (x - x0[k]) / sigma
		prev := x + d*dt
		out[k] = prev + noise[k]*up
	}
	s.next++
	return out, nil
}
