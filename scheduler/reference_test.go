package scheduler

import (
	"fmt"
	"math"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/torchrand"
)

// refNames maps scheduler names to their prefix in schedulers.safetensors.
var refNames = map[string]string{
	"pndm": "pndm", "ddim": "ddim", "euler": "euler", "euler_a": "euler_a", "lms": "lms",
	"dpmpp_2m": "dpmpp2m", "dpmpp_2m_karras": "dpmpp2m_karras",
}

// syntheticModel is the reference's stand-in for the UNet: tanh(0.5·x + 0.01·t/1000) on the
// scaled input, in float32 as torch computes it.
func syntheticModel(x []float32, t float64) []float32 {
	c := float32(0.01) * float32(t) / 1000
	if t != math.Trunc(t) {
		c = float32(0.01 * t / 1000) // float timesteps are float64 tensors in the reference
	}
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(math.Tanh(float64(0.5*v + c)))
	}
	return out
}

// relErr is the largest |got-want| / max(1, max|want|) of one tensor.
func relErr(got []float32, want []float64) float64 {
	e, m := golden.MaxAbsDiff(got, want)
	return e / math.Max(1, m)
}

func loadSDConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := LoadConfig(golden.Path("tiny-sd", "scheduler", "scheduler_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// referenceTols holds each scheduler's tolerance (relative to max(1, max|ref|)) of its sigmas,
// scaled inputs, model outputs and samples: about 10× the largest error measured over 20 and 50
// steps (given beside it; the paths do not differ, the schedulers run in plain Go).
var referenceTols = map[string]float64{
	"pndm":            2e-6, // 1.2e-7
	"ddim":            2e-6, // 1.5e-7
	"euler":           6e-7, // 6.0e-8
	"euler_a":         7e-6, // 6.6e-7
	"lms":             3e-6, // 3.0e-7
	"dpmpp_2m":        5e-6, // 4.8e-7
	"dpmpp_2m_karras": 7e-6, // 6.8e-7
}

// TestReference runs every scheduler at 20 and 50 steps on the synthetic model and compares
// timesteps, sigmas, init_noise_sigma and every step's scaled input, model output and sample
// with diffusers v0.21.4.
func TestReference(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("schedulers.safetensors"))
	cfg := loadSDConfig(t)
	for _, name := range Names() {
		tol, ok := referenceTols[name]
		if !ok {
			t.Fatalf("%s: no tolerance in referenceTols", name)
		}
		for _, steps := range []int{20, 50} {
			t.Run(fmt.Sprintf("%s/%d", name, steps), func(t *testing.T) {
				runReference(t, f, cfg, name, steps, tol)
			})
		}
	}
}

func runReference(t *testing.T, f *golden.File, cfg Config, name string, steps int, tol float64) {
	prefix := fmt.Sprintf("%s.%d.", refNames[name], steps)
	s, err := New(name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTimesteps(steps); err != nil {
		t.Fatal(err)
	}
	ts := s.Timesteps()
	refTS := f.Must(t, prefix+"timesteps")
	if len(ts) != len(refTS.Data) {
		t.Fatalf("%d timesteps, reference has %d", len(ts), len(refTS.Data))
	}
	tsErr := 0.0
	for i, v := range ts {
		tsErr = math.Max(tsErr, math.Abs(v-refTS.Data[i]))
	}
	if tsErr != 0 {
		t.Errorf("timesteps differ by up to %g: got %v, want %v", tsErr, ts, refTS.Data)
	}
	sigErr := 0.0
	if ref, err := f.Get(prefix + "sigmas"); err == nil {
		ss, ok := s.(SigmaScheduler)
		if !ok {
			t.Fatalf("reference has sigmas but %s has no Sigmas method", name)
		}
		sig := ss.Sigmas()
		if len(sig) != len(ref.Data) {
			t.Fatalf("%d sigmas, reference has %d", len(sig), len(ref.Data))
		}
		sigErr = relErr(sig, ref.Data)
	}
	initRef := f.Must(t, prefix+"init_noise_sigma").Data[0]
	initErr := math.Abs(float64(s.InitNoiseSigma())-initRef) / math.Max(1, math.Abs(initRef))

	sample := f.Must(t, prefix+"sample0").F32()
	scaledRef := f.Must(t, prefix+"scaled_inputs").Data
	outRef := f.Must(t, prefix+"model_outputs").Data
	sampleRef := f.Must(t, prefix+"samples").Data
	n := len(sample)
	rng := torchrand.New(5)
	var maxScaled, maxOut, maxSample float64
	for i, tv := range ts {
		x, err := s.ScaleModelInput(sample, i)
		if err != nil {
			t.Fatal(err)
		}
		maxScaled = math.Max(maxScaled, relErr(x, scaledRef[i*n:(i+1)*n]))
		mo := syntheticModel(x, tv)
		maxOut = math.Max(maxOut, relErr(mo, outRef[i*n:(i+1)*n]))
		sample, err = s.Step(mo, i, sample, rng)
		if err != nil {
			t.Fatal(err)
		}
		e := relErr(sample, sampleRef[i*n:(i+1)*n])
		if e > tol && maxSample <= tol {
			t.Errorf("step %d (t=%v): sample relative error %.3g", i, tv, e)
		}
		maxSample = math.Max(maxSample, e)
	}
	label := fmt.Sprintf("%s %d steps: ", name, steps)
	golden.Within(t, label+"sigmas", "relative", sigErr, tol)
	golden.Within(t, label+"init_noise_sigma", "relative", initErr, tol)
	golden.Within(t, label+"scaled_inputs", "relative", maxScaled, tol)
	golden.Within(t, label+"model_outputs", "relative", maxOut, tol)
	golden.Within(t, label+"samples", "relative", maxSample, tol)
}
