package scheduler

import (
	"math"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/torchrand"
)

func TestStartIndex(t *testing.T) {
	for _, c := range []struct {
		steps    int
		strength float64
		want     int
	}{
		{10, 0.6, 4}, {8, 0.35, 6}, {8, 0.75, 2}, {6, 1, 0}, {25, 0.75, 7}, {20, 0.5, 10}, {3, 0.34, 2},
	} {
		got, err := StartIndex(c.steps, c.strength)
		if err != nil || got != c.want {
			t.Errorf("StartIndex(%d, %v) = %d, %v; want %d", c.steps, c.strength, got, err, c.want)
		}
	}
	for _, c := range []struct {
		steps    int
		strength float64
		want     string
	}{
		{10, 0, "strength = 0"}, {10, 1.5, "(0, 1]"}, {10, math.NaN(), "strength = NaN"}, {4, 0.2, "runs no step"}, {0, 0.5, "steps = 0"},
	} {
		if _, err := StartIndex(c.steps, c.strength); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("StartIndex(%d, %v): error %v, want one containing %q", c.steps, c.strength, err, c.want)
		}
	}
}

// TestStrengthEveryScheduler runs every scheduler from the middle of a 20-step schedule
// (strength 0.5), starting from noised latents, as img2img does.
func TestStrengthEveryScheduler(t *testing.T) {
	cfg := loadSDConfig(t)
	for _, name := range Names() {
		s, err := New(name, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetTimesteps(20); err != nil {
			t.Fatal(err)
		}
		start, err := StartIndex(20, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetStart(start); err != nil {
			t.Fatal(err)
		}
		rng := torchrand.New(7)
		x0 := rng.Randn(1, 4, 4, 4)
		x, err := s.AddNoise(x0, rng.Randn(1, 4, 4, 4), start)
		if err != nil {
			t.Fatal(err)
		}
		ts := s.Timesteps()
		calls := 0
		for i := start; i < len(ts); i++ {
			in, err := s.ScaleModelInput(x, i)
			if err != nil {
				t.Fatal(err)
			}
			if x, err = s.Step(syntheticModel(in, ts[i]), i, x, rng); err != nil {
				t.Fatalf("%s: step %d: %v", name, i, err)
			}
			calls++
		}
		for _, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s: non-finite result", name)
			}
		}
		t.Logf("%s: %d of %d steps from t=%v", name, calls, len(ts), ts[start])
		if _, err := s.Step(make([]float32, len(x)), start, x, rng); err == nil {
			t.Errorf("%s: a step out of order was accepted", name)
		}
	}
}

// TestAddNoiseGolden: the initial latents of diffusers' inpainting run at strength 0.75 (DDIM,
// 8 steps) are add_noise(image_latents, noise, timesteps[2]).
func TestAddNoiseGolden(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("img2img-golden.safetensors"))
	s, err := New("ddim", loadSDConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTimesteps(8); err != nil {
		t.Fatal(err)
	}
	start, _ := StartIndex(8, 0.75)
	got, err := s.AddNoise(f.Must(t, "inpaint.ddim.image_latents").F32(), f.Must(t, "inpaint.ddim.noise").F32(), start)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "inpaint.ddim.latents_init", got, f.Must(t, "inpaint.ddim.latents_init"), 1e-6)
	want := f.Must(t, "inpaint.ddim.timesteps").Ints()
	if ts := s.Timesteps()[start:]; len(ts) != len(want) || int(ts[0]) != want[0] {
		t.Errorf("timesteps from the start %v, want %v", ts, want)
	}
}

// TestKdiffAddNoise: x + σ_i·ε.
func TestKdiffAddNoise(t *testing.T) {
	s, err := New("euler", loadSDConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTimesteps(10); err != nil {
		t.Fatal(err)
	}
	sig := s.(SigmaScheduler).Sigmas()[3]
	got, err := s.AddNoise([]float32{1, -2}, []float32{0.5, 3}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{1 + 0.5*sig, -2 + 3*sig}; got[0] != want[0] || got[1] != want[1] {
		t.Errorf("AddNoise = %v, want %v", got, want)
	}
}

func TestSetStartErrors(t *testing.T) {
	cfg := loadSDConfig(t)
	s, _ := New("pndm", cfg)
	if err := s.SetStart(0); err == nil || !strings.Contains(err.Error(), "before SetTimesteps") {
		t.Errorf("SetStart before SetTimesteps: %v", err)
	}
	if _, err := s.AddNoise([]float32{1}, []float32{1}, 0); err == nil {
		t.Error("AddNoise before SetTimesteps accepted")
	}
	s.SetTimesteps(10)
	if err := s.SetStart(11); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("SetStart(11) of 11 timesteps: %v", err)
	}
	if _, err := s.AddNoise([]float32{1, 2}, []float32{1}, 0); err == nil || !strings.Contains(err.Error(), "noise 1") {
		t.Errorf("AddNoise with mismatched lengths: %v", err)
	}
	x := []float32{0.1, 0.2}
	if _, err := s.Step(x, 0, x, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStart(3); err == nil || !strings.Contains(err.Error(), "after Step") {
		t.Errorf("SetStart after a Step: %v", err)
	}
	// SetTimesteps resets the start.
	s.SetTimesteps(10)
	s.SetStart(4)
	s.SetTimesteps(10)
	if _, err := s.Step(x, 0, x, nil); err != nil {
		t.Errorf("step 0 after SetTimesteps reset the start: %v", err)
	}
}
