package scheduler

import (
	"fmt"

	"github.com/smallsd/smallsd/torchrand"
)

// pndm is diffusers' PNDMScheduler with skip_prk_steps=True: pseudo linear multistep (PLMS)
// of up to fourth order. The second timestep is repeated: the first two model calls make one
// Heun-like step, so n steps take n+1 model calls.
type pndm struct {
	base
	finalAlpha float32
	ratio      int         // num_train_timesteps // num_inference_steps
	ets        [][]float32 // the last (up to 4) model outputs
	curSample  []float32
}

func newPNDM(name string, cfg Config) (Scheduler, error) {
	b, err := newBase(name, "pndm", cfg)
	if err != nil {
		return nil, err
	}
	s := &pndm{base: b, finalAlpha: b.ac[0]}
	if b.p.setAlphaToOne {
		s.finalAlpha = 1
	}
	return s, nil
}

func (s *pndm) Fresh() Scheduler {
	f, _ := newPNDM(s.name, s.cfg) // the config was validated when s was made
	return f
}

func (s *pndm) InitNoiseSigma() float32 { return 1 }

func (s *pndm) SetTimesteps(steps int) error {
	if err := s.checkSteps(steps); err != nil {
		return err
	}
	ts := intTimesteps(s.p, steps)
	if err := s.checkRange(ts); err != nil {
		return err
	}
	// plms_timesteps = concat(ts[:-1], ts[-2:-1], ts[-1:])[::-1]
	plms := append(append([]int(nil), ts[:len(ts)-1]...), ts[max(len(ts)-2, 0):]...)
	reverse(plms)
	s.timesteps = make([]float64, len(plms))
	for i, t := range plms {
		s.timesteps[i] = float64(t)
	}
	s.steps = steps
	s.ratio = s.p.numTrain / steps
	s.ets, s.curSample, s.next, s.start = nil, nil, 0, 0
	return nil
}

func (s *pndm) ScaleModelInput(sample []float32, i int) ([]float32, error) {
	if err := s.checkIndex("ScaleModelInput", i, len(sample)); err != nil {
		return nil, err
	}
	return append([]float32(nil), sample...), nil
}

// Step is diffusers' step_plms; diffusers' counter is the number of steps taken since the
// start (SetStart), so a generation that starts part-way makes its Heun-like step there.
func (s *pndm) Step(modelOutput []float32, i int, sample []float32, _ *torchrand.Generator) ([]float32, error) {
	if err := s.checkStep(i, modelOutput, sample); err != nil {
		return nil, err
	}
	t := int(s.timesteps[i])
	prevT := t - s.ratio
	counter := i - s.start
	if counter != 1 {
		if len(s.ets) > 3 {
			s.ets = s.ets[len(s.ets)-3:]
		}
		s.ets = append(s.ets, append([]float32(nil), modelOutput...))
	} else {
		prevT = t
		t += s.ratio
		if t >= s.p.numTrain {
			return nil, fmt.Errorf("%s: step %d needs timestep %d, beyond num_train_timesteps %d", s.name, i, t, s.p.numTrain)
		}
	}
	mo := make([]float32, len(modelOutput))
	e := s.ets
	n := len(e)
	switch {
	case n == 1 && counter == 0:
		copy(mo, modelOutput)
		s.curSample = append([]float32(nil), sample...)
	case n == 1 && counter == 1:
		for k, v := range modelOutput {
			mo[k] = (v + e[0][k]) / 2
		}
		sample = s.curSample
		s.curSample = nil
	case n == 2:
		for k := range mo {
			mo[k] = (3*e[1][k] - e[0][k]) / 2
		}
	case n == 3:
		for k := range mo {
			mo[k] = (23*e[2][k] - 16*e[1][k] + 5*e[0][k]) / 12
		}
	default:
		const c = float32(1.0 / 24)
		for k := range mo {
			mo[k] = c * (55*e[3][k] - 59*e[2][k] + 37*e[1][k] - 9*e[0][k])
		}
	}
	out := s.prevSample(sample, t, prevT, mo)
	s.next++
	return out, nil
}

// prevSample is diffusers' PNDM _get_prev_sample (formula (9) of the PNDM paper) in float32.
func (s *pndm) prevSample(sample []float32, t, prevT int, mo []float32) []float32 {
	at := s.ac[t]
	aPrev := s.finalAlpha
	if prevT >= 0 {
		aPrev = s.ac[prevT]
	}
	bt := 1 - at
	bPrev := 1 - aPrev
	if s.p.predictionType == "v_prediction" {
		sa, sb := sqrt32(at), sqrt32(bt)
		for k := range mo {
			mo[k] = sa*mo[k] + sb*sample[k]
		}
	}
	sampleCoeff := sqrt32(aPrev / at)
	denom := at*sqrt32(bPrev) + sqrt32(at*bt*aPrev)
	diff := aPrev - at
	out := make([]float32, len(sample))
	for k := range out {
		out[k] = sampleCoeff*sample[k] - diff*mo[k]/denom
	}
	return out
}
