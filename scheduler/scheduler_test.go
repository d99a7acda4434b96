package scheduler

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/torchrand"
)

func TestNames(t *testing.T) {
	want := []string{"ddim", "dpmpp_2m", "dpmpp_2m_karras", "euler", "euler_a", "lms", "pndm"}
	if got := Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	skip := true
	for _, n := range want {
		s, err := New(n, Config{SkipPRKSteps: &skip})
		if err != nil {
			t.Fatal(err)
		}
		if s.Name() != n || s.Fresh().Name() != n {
			t.Errorf("%s: Name %q, Fresh().Name %q", n, s.Name(), s.Fresh().Name())
		}
	}
}

// TestTimestepSpacing checks timestep_spacing against values worked out by hand from
// diffusers' formulas.
func TestTimestepSpacing(t *testing.T) {
	cfgWith := func(spacing string) Config {
		off, skip := 1, true
		return Config{TimestepSpacing: &spacing, StepsOffset: &off, SkipPRKSteps: &skip}
	}
	for _, tc := range []struct {
		name, spacing string
		steps         int
		want          []float64
	}{
		{"ddim", "trailing", 10, []float64{999, 899, 799, 699, 599, 499, 399, 299, 199, 99}},
		{"ddim", "linspace", 10, []float64{999, 888, 777, 666, 555, 444, 333, 222, 111, 0}},
		{"ddim", "leading", 4, []float64{751, 501, 251, 1}},
		{"pndm", "leading", 4, []float64{751, 501, 501, 251, 1}},
		{"pndm", "trailing", 4, []float64{999, 749, 749, 499, 249}},
		{"euler", "trailing", 4, []float64{999, 749, 499, 249}},
		{"euler", "leading", 4, []float64{751, 501, 251, 1}},
		{"dpmpp_2m", "leading", 4, []float64{801, 601, 401, 201}},
		{"dpmpp_2m", "linspace", 4, []float64{999, 749, 500, 250}},
		{"dpmpp_2m", "trailing", 4, []float64{999, 749, 499, 249}},
	} {
		s, err := New(tc.name, cfgWith(tc.spacing))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetTimesteps(tc.steps); err != nil {
			t.Fatal(err)
		}
		if got := s.Timesteps(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %s %d: timesteps %v, want %v", tc.name, tc.spacing, tc.steps, got, tc.want)
		}
	}
}

// TestInitNoiseSigmaLeading: with leading spacing the k-diffusion schedulers start from
// √(σ_max² + 1) rather than σ_max.
func TestInitNoiseSigmaLeading(t *testing.T) {
	cfg := loadSDConfig(t)
	lead := "leading"
	cfg.TimestepSpacing = &lead
	s, err := New("euler", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTimesteps(10); err != nil {
		t.Fatal(err)
	}
	sig := s.(SigmaScheduler).Sigmas()[0]
	want := float32(math.Sqrt(float64(sig)*float64(sig) + 1))
	if got := s.InitNoiseSigma(); math.Abs(float64(got-want)) > 1e-6*float64(want) {
		t.Fatalf("InitNoiseSigma %v, want %v", got, want)
	}
}

// TestE2ETimesteps checks the timesteps of the pipeline runs in tiny-sd-golden.safetensors.
func TestE2ETimesteps(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	cfg := loadSDConfig(t)
	for _, tc := range []struct {
		run, name string
		steps     int
	}{{"pndm", "pndm", 4}, {"ddim", "ddim", 5}, {"rect_nocfg", "pndm", 3}} {
		s, err := New(tc.name, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetTimesteps(tc.steps); err != nil {
			t.Fatal(err)
		}
		ref := f.Must(t, "e2e."+tc.run+".timesteps").Data
		if got := s.Timesteps(); !reflect.DeepEqual(got, ref) {
			t.Errorf("e2e.%s: timesteps %v, want %v", tc.run, got, ref)
		}
	}
}

func TestStepErrors(t *testing.T) {
	cfg := loadSDConfig(t)
	x := make([]float32, 8)
	for _, name := range Names() {
		s, _ := New(name, cfg)
		if _, err := s.Step(x, 0, x, torchrand.New(1)); err == nil || !strings.Contains(err.Error(), "SetTimesteps") {
			t.Errorf("%s: Step before SetTimesteps: %v", name, err)
		}
		if err := s.SetTimesteps(0); err == nil {
			t.Errorf("%s: SetTimesteps(0) accepted", name)
		}
		if err := s.SetTimesteps(1001); err == nil {
			t.Errorf("%s: SetTimesteps(1001) accepted", name)
		}
		if err := s.SetTimesteps(5); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Step(x, 1, x, torchrand.New(1)); err == nil || !strings.Contains(err.Error(), "in order") {
			t.Errorf("%s: out-of-order Step: %v", name, err)
		}
		if _, err := s.Step(x[:4], 0, x, torchrand.New(1)); err == nil {
			t.Errorf("%s: mismatched lengths accepted", name)
		}
		if _, err := s.ScaleModelInput(x, len(s.Timesteps())); err == nil {
			t.Errorf("%s: ScaleModelInput out of range accepted", name)
		}
	}
	s, _ := New("euler_a", cfg)
	_ = s.SetTimesteps(5)
	if _, err := s.Step(x, 0, x, nil); err == nil || !strings.Contains(err.Error(), "rng") {
		t.Errorf("euler_a without rng: %v", err)
	}
	off := 999
	if s, _ := New("ddim", Config{StepsOffset: &off}); s.SetTimesteps(4) == nil {
		t.Error("ddim: timesteps beyond num_train_timesteps accepted")
	}
}

// run does a whole generation with the synthetic model and returns the final sample.
func run(t *testing.T, s Scheduler, steps int, seed uint64) []float32 {
	t.Helper()
	if err := s.SetTimesteps(steps); err != nil {
		t.Fatal(err)
	}
	rng := torchrand.New(seed)
	x := rng.Randn(1, 4, 4, 4)
	for k := range x {
		x[k] *= s.InitNoiseSigma()
	}
	for i, ts := range s.Timesteps() {
		in, err := s.ScaleModelInput(x, i)
		if err != nil {
			t.Fatal(err)
		}
		if x, err = s.Step(syntheticModel(in, ts), i, x, rng); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

// TestFreshAndRestart: a scheduler gives the same generation again after SetTimesteps, and a
// Fresh copy gives the same result.
func TestFreshAndRestart(t *testing.T) {
	cfg := loadSDConfig(t)
	for _, name := range Names() {
		s, _ := New(name, cfg)
		a := run(t, s, 7, 3)
		b := run(t, s, 7, 3)
		c := run(t, s.Fresh(), 7, 3)
		if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(a, c) {
			t.Errorf("%s: repeated generations differ", name)
		}
	}
}

// TestVPrediction: for a sample built from known x0 and ε, an ε-prediction model returning ε
// and a v-prediction model returning v = α·ε − σ·x0 must give the same step.
func TestVPrediction(t *testing.T) {
	cfg := loadSDConfig(t)
	vp := "v_prediction"
	cfgV := cfg
	cfgV.PredictionType = &vp
	g := torchrand.New(11)
	x0 := g.Randn(64)
	eps := g.Randn(64)
	for _, name := range Names() {
		for _, steps := range []int{1, 10} {
			se, _ := New(name, cfg)
			sv, _ := New(name, cfgV)
			if err := se.SetTimesteps(steps); err != nil {
				t.Fatal(err)
			}
			_ = sv.SetTimesteps(steps)
			ts := se.Timesteps()[0]
			// ᾱ of the first timestep, from the scheduler's own tables.
			var alpha, sigma float64
			if ss, ok := se.(SigmaScheduler); ok && name != "dpmpp_2m" && name != "dpmpp_2m_karras" {
				sg := float64(ss.Sigmas()[0])
				alpha, sigma = 1/math.Sqrt(sg*sg+1), sg/math.Sqrt(sg*sg+1)
			} else {
				ac := float64(alphasCumprod(se.(interface{ params() params }).params())[int(ts)])
				alpha, sigma = math.Sqrt(ac), math.Sqrt(1-ac)
			}
			sample := make([]float32, len(x0))
			v := make([]float32, len(x0))
			for k := range x0 {
				xt := alpha*float64(x0[k]) + sigma*float64(eps[k]) // model input
				sample[k] = float32(xt)
				v[k] = float32(alpha*float64(eps[k]) - sigma*float64(x0[k]))
			}
			if _, ok := se.(SigmaScheduler); ok && name != "dpmpp_2m" && name != "dpmpp_2m_karras" {
				for k := range sample { // k-diffusion samples are x0 + σ_k·ε, unscaled
					sample[k] = float32(float64(sample[k]) / alpha)
				}
			}
			a, err := se.Step(eps, 0, sample, torchrand.New(2))
			if err != nil {
				t.Fatal(err)
			}
			b, err := sv.Step(v, 0, sample, torchrand.New(2))
			if err != nil {
				t.Fatal(err)
			}
			// 1.3e-6 measured (dpmpp_2m, 1 step)
			golden.Within(t, fmt.Sprintf("%s %d steps: ε vs v prediction", name, steps), "relative", relErr(a, toF64(b)), 2e-5)
		}
	}
}

func toF64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func ExampleNames() {
	fmt.Println(Names())
	// Output: [ddim dpmpp_2m dpmpp_2m_karras euler euler_a lms pndm]
}

// BenchmarkGeneration20 runs a 20-step generation on 1×4×64×64 latents (a 512×512 image) with
// a free model, measuring the schedulers' own cost per generation.
func BenchmarkGeneration20(b *testing.B) {
	cfg, err := LoadConfig(golden.Path("tiny-sd", "scheduler", "scheduler_config.json"))
	if err != nil {
		b.Fatal(err)
	}
	eps := torchrand.New(1).Randn(1, 4, 64, 64)
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			s, _ := New(name, cfg)
			for n := 0; n < b.N; n++ {
				_ = s.SetTimesteps(20)
				rng := torchrand.New(0)
				x := rng.Randn(1, 4, 64, 64)
				for i := range s.Timesteps() {
					in, _ := s.ScaleModelInput(x, i)
					_ = in
					x, _ = s.Step(eps, i, x, rng)
				}
			}
		})
	}
}
