package scheduler

import (
	"fmt"
)

// StartIndex is the index into Timesteps at which an img2img or inpainting generation of the
// given steps and strength (in (0, 1]) starts, as diffusers' get_timesteps computes it:
// init_timestep = min(int(steps·strength), steps), t_start = steps − init_timestep (every
// scheduler here has order 1). Strength 1 starts at 0, the whole schedule. It is an error when
// no step would run (steps·strength < 1) or strength is outside (0, 1].
func StartIndex(steps int, strength float64) (int, error) {
	if steps < 1 {
		return 0, fmt.Errorf("scheduler: steps = %d, want ≥ 1", steps)
	}
	if !(strength > 0 && strength <= 1) {
		return 0, fmt.Errorf("scheduler: strength = %v, want a number in (0, 1]", strength)
	}
	init := min(int(float64(steps)*strength), steps)
	if init < 1 {
		return 0, fmt.Errorf("scheduler: strength %v × %d steps runs no step (want strength ≥ %.4g)", strength, steps, 1/float64(steps))
	}
	return steps - init, nil
}

func (b *base) SetStart(i int) error {
	if b.timesteps == nil {
		return fmt.Errorf("%s: SetStart before SetTimesteps", b.name)
	}
	if i < 0 || i >= len(b.timesteps) {
		return fmt.Errorf("%s: SetStart index %d out of range [0, %d)", b.name, i, len(b.timesteps))
	}
	if b.next != b.start {
		return fmt.Errorf("%s: SetStart after Step %d (call it before the first Step)", b.name, b.next-1)
	}
	b.start, b.next = i, i
	return nil
}

// checkNoise validates an AddNoise call.
func (b *base) checkNoise(original, noise []float32, i int) error {
	if err := b.checkIndex("AddNoise", i, len(original)); err != nil {
		return err
	}
	if len(original) != len(noise) {
		return fmt.Errorf("%s: AddNoise: original has %d values, noise %d", b.name, len(original), len(noise))
	}
	return nil
}

// addNoiseAlpha is DDPMScheduler.add_noise (also PNDM's, DDIM's and, in diffusers v0.21.4,
// DPMSolverMultistep's): √ᾱ_t·x + √(1−ᾱ_t)·ε in float32, t = Timesteps()[i].
func (b *base) addNoiseAlpha(original, noise []float32, i int) ([]float32, error) {
	if err := b.checkNoise(original, noise, i); err != nil {
		return nil, err
	}
	a := b.ac[int(b.timesteps[i])]
	sa, sb := sqrt32(a), sqrt32(1-a) // torch's ** 0.5 is sqrt
	out := make([]float32, len(original))
	for k, x := range original {
		out[k] = float32(sa*x) + float32(sb*noise[k]) // two roundings, as torch; no fused multiply-add
	}
	return out, nil
}

func (s *pndm) AddNoise(original, noise []float32, i int) ([]float32, error) {
	return s.addNoiseAlpha(original, noise, i)
}

func (s *ddim) AddNoise(original, noise []float32, i int) ([]float32, error) {
	return s.addNoiseAlpha(original, noise, i)
}

func (s *dpm) AddNoise(original, noise []float32, i int) ([]float32, error) {
	return s.addNoiseAlpha(original, noise, i)
}

// AddNoise is the k-diffusion schedulers' add_noise: x + σ_i·ε in float32.
func (s *kdiff) AddNoise(original, noise []float32, i int) ([]float32, error) {
	if err := s.checkNoise(original, noise, i); err != nil {
		return nil, err
	}
	sigma := s.sigmas[i]
	out := make([]float32, len(original))
	for k, x := range original {
		out[k] = x + float32(noise[k]*sigma)
	}
	return out, nil
}
