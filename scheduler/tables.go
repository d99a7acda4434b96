package scheduler

import "math"

// vecLanes is the float32 lane count of the torch CPU kernels the reference ran (AVX2: 8).
// torch.linspace fills 2×lanes values per vector iteration with base + k·step, which rounds
// differently from its scalar formula, and its AVX2 build contracts a + b·c into fused
// multiply-adds. The betas follow both: with them, all 1000 training sigmas of SD's schedule
// equal the reference bit for bit (without them ~half differ by an ulp or two).
const vecLanes = 8

// fma32 is a float32 fused multiply-add (a·b is exact in float64).
func fma32(a, b, c float32) float32 { return float32(math.FMA(float64(a), float64(b), float64(c))) }

// torchLinspace32 reproduces torch.linspace(start, end, steps, dtype=torch.float32) on CPU.
func torchLinspace32(start, end float32, steps int) []float32 {
	out := make([]float32, steps)
	if steps == 1 {
		out[0] = start
		return out
	}
	step := (end - start) / float32(steps-1)
	halfway := steps / 2
	at := func(idx int) float32 {
		if idx < halfway {
			return fma32(step, float32(idx), start)
		}
		return fma32(-step, float32(steps-idx-1), end)
	}
	vecEnd := steps - steps%(2*vecLanes)
	for idx := 0; idx < vecEnd; idx += vecLanes {
		base := at(idx)
		for k := 0; k < vecLanes; k++ {
			out[idx+k] = fma32(float32(k), step, base)
		}
	}
	for idx := vecEnd; idx < steps; idx++ {
		out[idx] = at(idx)
	}
	return out
}

// betas returns the training noise schedule as the float32 tensor diffusers builds.
func betas(p params) []float32 {
	n := p.numTrain
	switch {
	case p.trainedBetas != nil:
		b := make([]float32, n)
		for i, v := range p.trainedBetas {
			b[i] = float32(v)
		}
		return b
	case p.betaSchedule == "scaled_linear":
		b := torchLinspace32(float32(math.Sqrt(p.betaStart)), float32(math.Sqrt(p.betaEnd)), n)
		for i, v := range b {
			b[i] = v * v
		}
		return b
	case p.betaSchedule == "squaredcos_cap_v2":
		alphaBar := func(t float64) float64 {
			c := math.Cos((t + 0.008) / 1.008 * math.Pi / 2)
			return c * c
		}
		b := make([]float32, n)
		for i := range b {
			t1 := float64(i) / float64(n)
			t2 := float64(i+1) / float64(n)
			b[i] = float32(math.Min(1-alphaBar(t2)/alphaBar(t1), 0.999))
		}
		return b
	default: // linear
		return torchLinspace32(float32(p.betaStart), float32(p.betaEnd), n)
	}
}

// alphasCumprod is torch.cumprod(1 - betas): float32 values, accumulated in float64 as torch's
// CPU cumprod does.
func alphasCumprod(p params) []float32 {
	b := betas(p)
	out := make([]float32, len(b))
	acc := 1.0
	for i, beta := range b {
		acc *= float64(1 - beta)
		out[i] = float32(acc)
	}
	return out
}

// trainSigmas is ((1 - ᾱ) / ᾱ) ** 0.5 computed on float32 tensors.
func trainSigmas(ac []float32) []float32 {
	out := make([]float32, len(ac))
	for i, a := range ac {
		out[i] = sqrt32((1 - a) / a)
	}
	return out
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// npLinspace is numpy.linspace(start, stop, num) in float64.
func npLinspace(start, stop float64, num int) []float64 {
	out := make([]float64, num)
	if num == 1 {
		out[0] = start
		return out
	}
	step := (stop - start) / float64(num-1)
	for i := range out {
		out[i] = float64(i)*step + start
	}
	out[num-1] = stop
	return out
}

// npArange is numpy.arange(start, stop, step) for a float step: start + i·delta with delta
// recomputed from the first two values, as numpy fills it.
func npArange(start, stop, step float64) []float64 {
	n := int(math.Ceil((stop - start) / step))
	if n <= 0 {
		return nil
	}
	delta := (start + step) - start
	out := make([]float64, n)
	for i := range out {
		out[i] = start + float64(i)*delta
	}
	return out
}

// spacedTimesteps returns the descending float64 timesteps of diffusers' timestep_spacing
// ("linspace", "leading", "trailing") before any scheduler-specific post-processing, for the
// k-diffusion style schedulers (Euler, Euler ancestral, LMS).
func spacedTimesteps(p params, n int) []float64 {
	N := p.numTrain
	var ts []float64
	switch p.timestepSpacing {
	case "linspace":
		ts = npLinspace(0, float64(N-1), n)
	case "leading":
		ratio := N / n
		ts = make([]float64, n)
		for i := range ts {
			ts[i] = float64(i*ratio + p.stepsOffset)
		}
	case "trailing":
		ts = npArange(float64(N), 0, -float64(N)/float64(n))
		for i := range ts {
			ts[i] = math.RoundToEven(ts[i]) - 1
		}
		return ts // already descending
	}
	reverse(ts)
	return ts
}

func reverse[T any](s []T) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

// npInterp is numpy.interp(x, arange(len(fp)), fp) for one x.
func npInterp(x float64, fp []float32) float64 {
	last := len(fp) - 1
	switch {
	case x <= 0:
		return float64(fp[0])
	case x >= float64(last):
		return float64(fp[last])
	}
	j := int(math.Floor(x))
	if float64(j) == x {
		return float64(fp[j])
	}
	slope := (float64(fp[j+1]) - float64(fp[j])) / 1
	return slope*(x-float64(j)) + float64(fp[j])
}

// karrasSigmas is diffusers' _convert_to_karras (rho = 7): sigma_min is in[last], sigma_max
// in[0], whatever their order.
func karrasSigmas(in []float64, n int) []float64 {
	sigmaMin, sigmaMax := in[len(in)-1], in[0]
	const rho = 7.0
	minInv := math.Pow(sigmaMin, 1/rho)
	maxInv := math.Pow(sigmaMax, 1/rho)
	ramp := npLinspace(0, 1, n)
	out := make([]float64, n)
	for i, r := range ramp {
		out[i] = math.Pow(maxInv+r*(minInv-maxInv), rho)
	}
	return out
}

// sigmaToT is diffusers' _sigma_to_t: the fractional training timestep whose log-sigma matches,
// interpolating linearly in log space. logSigmas are float32 (numpy log of a float32 array).
func sigmaToT(sigma float64, logSigmas []float32) float64 {
	logSigma := math.Log(sigma)
	low := 0
	for i, ls := range logSigmas {
		if logSigma-float64(ls) >= 0 {
			low = i
		}
	}
	if low > len(logSigmas)-2 {
		low = len(logSigmas) - 2
	}
	lo, hi := float64(logSigmas[low]), float64(logSigmas[low+1])
	w := (lo - logSigma) / (lo - hi)
	w = math.Max(0, math.Min(1, w))
	return (1-w)*float64(low) + w*float64(low+1)
}

func logSigmas32(s []float32) []float32 {
	out := make([]float32, len(s))
	for i, v := range s {
		out[i] = float32(math.Log(float64(v)))
	}
	return out
}

func roundEven(x float64) float64 { return math.RoundToEven(x) }
