package scheduler

import (
	"math"

	"github.com/smallsd/smallsd/torchrand"
)

// dpm is diffusers' DPMSolverMultistepScheduler with algorithm_type "dpmsolver++" (DPM++ 2M
// with the defaults solver_order 2, midpoint solver, lower_order_final). With
// use_karras_sigmas (dpmpp_2m_karras) diffusers v0.21.4 only changes which integer timesteps
// are visited; the update itself always uses the training α_t, σ_t and λ_t tables.
type dpm struct {
	base
	alphaT, sigmaT, lambdaT []float32
	sigmas                  []float32
	modelOutputs            [][]float32 // last solverOrder converted outputs, oldest first
	lowerOrderNums          int
}

func newDPM(name string, cfg Config) (Scheduler, error) {
	if name == "dpmpp_2m_karras" {
		on := true
		cfg.UseKarrasSigmas = &on
	}
	b, err := newBase(name, "dpm", cfg)
	if err != nil {
		return nil, err
	}
	s := &dpm{base: b}
	n := len(b.ac)
	s.alphaT, s.sigmaT, s.lambdaT = make([]float32, n), make([]float32, n), make([]float32, n)
	for i, a := range b.ac {
		s.alphaT[i] = sqrt32(a)
		s.sigmaT[i] = sqrt32(1 - a)
		s.lambdaT[i] = log32(s.alphaT[i]) - log32(s.sigmaT[i])
	}
	return s, nil
}

func log32(x float32) float32 { return float32(math.Log(float64(x))) }
func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }

func (s *dpm) Fresh() Scheduler {
	f, _ := newDPM(s.name, s.cfg)
	return f
}

func (s *dpm) InitNoiseSigma() float32 { return 1 }

// Sigmas returns diffusers' scheduler.sigmas: the training sigmas, or the Karras sigmas (in
// ascending order, as v0.21.4 keeps them) with use_karras_sigmas.
func (s *dpm) Sigmas() []float32 { return append([]float32(nil), s.sigmas...) }

func (s *dpm) SetTimesteps(steps int) error {
	if err := s.checkSteps(steps); err != nil {
		return err
	}
	N := s.p.numTrain
	// Clip the smallest λ for numerical stability: searchsorted(flip(λ), lambda_min_clipped).
	clipped := 0
	for i := N - 1; i >= 0 && float64(s.lambdaT[i]) < s.p.lambdaMinClipped; i-- {
		clipped++
	}
	last := N - clipped
	var ts []int
	switch s.p.timestepSpacing {
	case "linspace":
		lin := npLinspace(0, float64(last-1), steps+1)
		for i := steps; i >= 1; i-- {
			ts = append(ts, int(roundEven(lin[i])))
		}
	case "leading":
		ratio := last / (steps + 1)
		for i := steps; i >= 1; i-- {
			ts = append(ts, i*ratio+s.p.stepsOffset)
		}
	case "trailing":
		for _, v := range npArange(float64(last), 0, -float64(N)/float64(steps)) {
			ts = append(ts, int(roundEven(v))-1)
		}
	}
	train := trainSigmas(s.ac)
	s.sigmas = train
	if s.p.useKarras {
		in := make([]float64, len(train))
		for i, v := range train {
			in[i] = float64(v)
		}
		logs := logSigmas32(train)
		k := karrasSigmas(in, steps)
		s.sigmas = make([]float32, len(k))
		ts = ts[:0]
		for i := len(k) - 1; i >= 0; i-- {
			s.sigmas[len(k)-1-i] = float32(k[len(k)-1-i])
			ts = append(ts, int(roundEven(sigmaToT(k[i], logs))))
		}
	}
	if err := s.checkRange(ts); err != nil {
		return err
	}
	// Drop repeated timesteps, keeping first occurrences (np.unique + sort of indices).
	seen := map[int]bool{}
	s.timesteps = make([]float64, 0, len(ts))
	for _, t := range ts {
		if !seen[t] {
			seen[t] = true
			s.timesteps = append(s.timesteps, float64(t))
		}
	}
	s.steps, s.next, s.start = steps, 0, 0
	s.modelOutputs, s.lowerOrderNums = nil, 0
	return nil
}

func (s *dpm) ScaleModelInput(sample []float32, i int) ([]float32, error) {
	if err := s.checkIndex("ScaleModelInput", i, len(sample)); err != nil {
		return nil, err
	}
	return append([]float32(nil), sample...), nil
}

func (s *dpm) Step(modelOutput []float32, i int, sample []float32, _ *torchrand.Generator) ([]float32, error) {
	if err := s.checkStep(i, modelOutput, sample); err != nil {
		return nil, err
	}
	n := len(s.timesteps)
	t := int(s.timesteps[i])
	prevT := 0
	if i < n-1 {
		prevT = int(s.timesteps[i+1])
	}
	// diffusers' lower_order_second only affects third-order solvers, which are not supported.
	lowerFinal := i == n-1 && s.p.lowerOrderFinal && n < 15

	// convert_model_output: the data prediction x0.
	at, st := s.alphaT[t], s.sigmaT[t]
	x0 := make([]float32, len(sample))
	for k, x := range sample {
		if s.p.predictionType == "v_prediction" {
			x0[k] = at*x - st*modelOutput[k]
		} else {
			x0[k] = (x - st*modelOutput[k]) / at
		}
	}
	s.modelOutputs = append(s.modelOutputs, x0)
	if len(s.modelOutputs) > s.p.solverOrder {
		s.modelOutputs = s.modelOutputs[1:]
	}

	var out []float32
	if s.p.solverOrder == 1 || s.lowerOrderNums < 1 || lowerFinal {
		out = s.firstOrder(x0, t, prevT, sample)
	} else {
		out = s.secondOrder(int(s.timesteps[i-1]), t, prevT, sample)
	}
	if s.lowerOrderNums < s.p.solverOrder {
		s.lowerOrderNums++
	}
	s.next++
	return out, nil
}

// firstOrder is dpm_solver_first_order_update for dpmsolver++ (DDIM in λ), in float32.
func (s *dpm) firstOrder(x0 []float32, t, prevT int, sample []float32) []float32 {
	h := s.lambdaT[prevT] - s.lambdaT[t]
	c1 := s.sigmaT[prevT] / s.sigmaT[t]
	c2 := s.alphaT[prevT] * (exp32(-h) - 1)
	out := make([]float32, len(sample))
	for k, x := range sample {
		out[k] = c1*x - c2*x0[k]
	}
	return out
}

// secondOrder is multistep_dpm_solver_second_order_update for dpmsolver++, in float32.
func (s *dpm) secondOrder(s1, s0, t int, sample []float32) []float32 {
	m0, m1 := s.modelOutputs[len(s.modelOutputs)-1], s.modelOutputs[len(s.modelOutputs)-2]
	h := s.lambdaT[t] - s.lambdaT[s0]
	h0 := s.lambdaT[s0] - s.lambdaT[s1]
	r0 := h0 / h
	invR0 := 1 / r0
	c1 := s.sigmaT[t] / s.sigmaT[s0]
	em1 := exp32(-h) - 1
	c2 := s.alphaT[t] * em1
	var c3 float32
	if s.p.solverType == "heun" {
		c3 = -(s.alphaT[t] * (em1/h + 1)) // x_t = … + (α_t((e^{-h}-1)/h + 1)) D1
	} else {
		c3 = 0.5 * c2 // x_t = … - 0.5(α_t(e^{-h}-1)) D1
	}
	out := make([]float32, len(sample))
	for k, x := range sample {
		d1 := invR0 * (m0[k] - m1[k])
		out[k] = c1*x - c2*m0[k] - c3*d1
	}
	return out
}
