package scheduler

import "github.com/smallsd/smallsd/torchrand"

// ddim is diffusers' DDIMScheduler with eta = 0 (deterministic).
type ddim struct {
	base
	finalAlpha float32
	ratio      int
}

func newDDIM(name string, cfg Config) (Scheduler, error) {
	b, err := newBase(name, "ddim", cfg)
	if err != nil {
		return nil, err
	}
	s := &ddim{base: b, finalAlpha: b.ac[0]}
	if b.p.setAlphaToOne {
		s.finalAlpha = 1
	}
	return s, nil
}

func (s *ddim) Fresh() Scheduler {
	f, _ := newDDIM(s.name, s.cfg)
	return f
}

func (s *ddim) InitNoiseSigma() float32 { return 1 }

func (s *ddim) SetTimesteps(steps int) error {
	if err := s.checkSteps(steps); err != nil {
		return err
	}
	ts := intTimesteps(s.p, steps)
	if err := s.checkRange(ts); err != nil {
		return err
	}
	reverse(ts)
	s.timesteps = make([]float64, len(ts))
	for i, t := range ts {
		s.timesteps[i] = float64(t)
	}
	s.steps, s.ratio, s.next, s.start = steps, s.p.numTrain/steps, 0, 0
	return nil
}

func (s *ddim) ScaleModelInput(sample []float32, i int) ([]float32, error) {
	if err := s.checkIndex("ScaleModelInput", i, len(sample)); err != nil {
		return nil, err
	}
	return append([]float32(nil), sample...), nil
}

// Step is diffusers' DDIMScheduler.step with eta = 0, in float32.
func (s *ddim) Step(modelOutput []float32, i int, sample []float32, _ *torchrand.Generator) ([]float32, error) {
	if err := s.checkStep(i, modelOutput, sample); err != nil {
		return nil, err
	}
	t := int(s.timesteps[i])
	prevT := t - s.ratio
	at := s.ac[t]
	aPrev := s.finalAlpha
	if prevT >= 0 {
		aPrev = s.ac[prevT]
	}
	bt := 1 - at
	sa, sb := sqrt32(at), sqrt32(bt)
	dirCoeff := sqrt32(1 - aPrev - 0) // std_dev_t is 0 for eta = 0
	prevCoeff := sqrt32(aPrev)
	lim := float32(s.p.clipSampleRange)
	out := make([]float32, len(sample))
	for k, x := range sample {
		var x0, eps float32
		if s.p.predictionType == "v_prediction" {
			x0 = sa*x - sb*modelOutput[k]
			eps = sa*modelOutput[k] + sb*x
		} else {
			x0 = (x - sb*modelOutput[k]) / sa
			eps = modelOutput[k]
		}
		if s.p.clipSample {
			x0 = min(max(x0, -lim), lim)
		}
		out[k] = prevCoeff*x0 + dirCoeff*eps
	}
	s.next++
	return out, nil
}
