package scheduler

import (
	"math"

	"github.com/smallsd/smallsd/torchrand"
)

// lms is diffusers' LMSDiscreteScheduler: linear multistep of order up to 4 on the derivatives
// (x - x0)/σ, with coefficients that integrate the Lagrange basis polynomials over [σ_i, σ_i+1].
type lms struct {
	kdiff
	derivatives [][]float32 // oldest first, at most lmsOrder
}

// lmsOrder is the order diffusers' step uses by default.
const lmsOrder = 4

func newLMS(name string, cfg Config) (Scheduler, error) {
	k, err := newKdiff(name, "lms", cfg)
	if err != nil {
		return nil, err
	}
	return &lms{kdiff: k}, nil
}

func (s *lms) Fresh() Scheduler {
	f, _ := newLMS(s.name, s.cfg)
	return f
}

func (s *lms) SetTimesteps(steps int) error {
	s.derivatives = nil
	return s.setSigmas(steps)
}

func (s *lms) Step(modelOutput []float32, i int, sample []float32, _ *torchrand.Generator) ([]float32, error) {
	if err := s.checkStep(i, modelOutput, sample); err != nil {
		return nil, err
	}
	sigma := s.sigmas[i]
	x0 := s.predX0(modelOutput, sample, sigma)
	d := make([]float32, len(sample))
	for k, x := range sample {
		d[k] = (x - x0[k]) / sigma
	}
	s.derivatives = append(s.derivatives, d)
	if len(s.derivatives) > lmsOrder {
		s.derivatives = s.derivatives[1:]
	}
	order := min(i+1, lmsOrder)
	sum := make([]float32, len(sample))
	// diffusers zips the coefficients with the derivatives it has: after SetStart the first
	// steps use the leading coefficients of the full order with fewer derivatives.
	for cur := 0; cur < min(order, len(s.derivatives)); cur++ {
		c := float32(s.coefficient(order, i, cur))
		der := s.derivatives[len(s.derivatives)-1-cur] // newest first
		for k := range sum {
			sum[k] += c * der[k]
		}
	}
	out := make([]float32, len(sample))
	for k, x := range sample {
		out[k] = x + sum[k]
	}
	s.next++
	return out, nil
}

// coefficient is diffusers' get_lms_coefficient: ∫ over [σ_t, σ_t+1] of the Lagrange basis
// polynomial for node t-cur among nodes σ_t … σ_t-order+1. diffusers integrates with
// scipy.integrate.quad while evaluating the integrand on float32 tensors; the integrand is a
// polynomial of degree < 4, so Gauss–Legendre with 3 nodes is exact, and the integrand is
// evaluated in float32 here too.
func (s *lms) coefficient(order, t, cur int) float64 {
	basis := func(tau float64) float64 {
		prod := float32(1)
		for k := 0; k < order; k++ {
			if k == cur {
				continue
			}
			prod *= (float32(tau) - s.sigmas[t-k]) / (s.sigmas[t-cur] - s.sigmas[t-k])
		}
		return float64(prod)
	}
	a, b := float64(s.sigmas[t]), float64(s.sigmas[t+1])
	half, mid := (b-a)/2, (a+b)/2
	x := math.Sqrt(3.0 / 5.0)
	return half * (5.0/9*basis(mid-half*x) + 8.0/9*basis(mid) + 5.0/9*basis(mid+half*x))
}
