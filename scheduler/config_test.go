package scheduler

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/torchrand"
)

func TestLoadConfigSD(t *testing.T) {
	cfg := loadSDConfig(t)
	if cfg.BetaSchedule == nil || *cfg.BetaSchedule != "scaled_linear" || cfg.StepsOffset == nil || *cfg.StepsOffset != 1 {
		t.Fatalf("SD config read wrongly: %+v", cfg)
	}
	if cfg.TimestepSpacing != nil || cfg.PredictionType != nil {
		t.Fatalf("absent keys must stay nil: %+v", cfg)
	}
}

func TestConfigDefaultsPerScheduler(t *testing.T) {
	cfg := loadSDConfig(t)
	for _, tc := range []struct {
		kind, spacing  string
		clip, alphaOne bool
	}{
		{"pndm", "leading", false, false},
		{"ddim", "leading", false, false}, // SD's config says clip_sample false, set_alpha_to_one false
		{"euler", "linspace", false, false},
		{"lms", "linspace", false, false},
		{"dpm", "linspace", false, false},
	} {
		p, err := resolve(tc.kind, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if p.timestepSpacing != tc.spacing || p.clipSample != tc.clip || p.setAlphaToOne != tc.alphaOne {
			t.Errorf("%s: spacing %q clip %v alpha_to_one %v, want %q %v %v", tc.kind, p.timestepSpacing, p.clipSample, p.setAlphaToOne, tc.spacing, tc.clip, tc.alphaOne)
		}
	}
	// With an empty config DDIM's own defaults apply.
	p, err := resolve("ddim", Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.clipSample || !p.setAlphaToOne || p.betaSchedule != "linear" || p.betaEnd != 0.02 {
		t.Errorf("DDIM defaults wrong: %+v", p)
	}
}

func TestConfigErrorsNameKeyAndValue(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"pndm", `{"beta_schedule": "cosine"}`, `beta_schedule = cosine`},
		{"ddim", `{"prediction_type": "sample"}`, `prediction_type = sample`},
		{"euler", `{"timestep_spacing": "uniform"}`, `timestep_spacing = uniform`},
		{"pndm", `{"skip_prk_steps": false}`, `skip_prk_steps = false`},
		{"dpmpp_2m", `{"algorithm_type": "sde-dpmsolver++"}`, `algorithm_type = sde-dpmsolver++`},
		{"dpmpp_2m", `{"solver_order": 3}`, `solver_order = 3`},
		{"ddim", `{"thresholding": true}`, `thresholding = true`},
		{"euler", `{"interpolation_type": "log_linear"}`, `interpolation_type = log_linear`},
	} {
		cfg, err := ParseConfig([]byte(tc.json))
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(tc.name, cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: error %v, want it to mention %q", tc.name, tc.json, err, tc.want)
		}
	}
	if _, err := ParseConfig([]byte(`{"steps_offset": "one"}`)); err == nil || !strings.Contains(err.Error(), "steps_offset") {
		t.Errorf("wrong-typed value: error %v, want it to name steps_offset", err)
	}
	if _, err := ParseConfig([]byte(`{"beta_start": `)); err == nil {
		t.Error("truncated JSON accepted")
	}
	if _, err := New("heun", Config{}); err == nil || !strings.Contains(err.Error(), "heun") {
		t.Errorf("unknown name: error %v", err)
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: error %v", err)
	}
}

func TestParseConfigPythonInfinity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scheduler_config.json")
	data := `{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity, "note": "NaN -Infinity \" x", "trained_betas": null}`
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LambdaMinClipped == nil || !math.IsInf(*cfg.LambdaMinClipped, -1) {
		t.Fatalf("lambda_min_clipped = %v, want -Inf", cfg.LambdaMinClipped)
	}
	if cfg.TrainedBetas != nil {
		t.Fatal("null trained_betas must mean absent")
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"beta_start": 0.00085, "lambda_min_clipped": -Infinity}`))
	f.Add([]byte(`{"timestep_spacing": "trailing", "steps_offset": 1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		for _, name := range Names() {
			s, err := New(name, cfg)
			if err != nil {
				continue
			}
			if s.SetTimesteps(3) != nil {
				continue
			}
			x := []float32{0.5, -1, 2, 0}
			rng := torchrand.New(1)
			for i := range s.Timesteps() {
				in, err := s.ScaleModelInput(x, i)
				if err != nil {
					t.Fatal(err)
				}
				if x, err = s.Step(in, i, x, rng); err != nil {
					break
				}
			}
		}
	})
}
