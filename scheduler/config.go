package scheduler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// Config is a scheduler_config.json as diffusers v0.21.4 reads it. Every field is a pointer:
// nil means the key was absent and the chosen scheduler's own diffusers default applies, as in
// diffusers' SchedulerClass.from_config(config). Keys a scheduler does not use are ignored, as
// diffusers ignores them.
type Config struct {
	NumTrainTimesteps   *int       `json:"num_train_timesteps"`
	BetaStart           *float64   `json:"beta_start"`
	BetaEnd             *float64   `json:"beta_end"`
	BetaSchedule        *string    `json:"beta_schedule"`
	TrainedBetas        *[]float64 `json:"trained_betas"`
	StepsOffset         *int       `json:"steps_offset"`
	SetAlphaToOne       *bool      `json:"set_alpha_to_one"`
	SkipPRKSteps        *bool      `json:"skip_prk_steps"`
	ClipSample          *bool      `json:"clip_sample"`
	ClipSampleRange     *float64   `json:"clip_sample_range"`
	PredictionType      *string    `json:"prediction_type"`
	TimestepSpacing     *string    `json:"timestep_spacing"`
	Thresholding        *bool      `json:"thresholding"`
	RescaleBetasZeroSNR *bool      `json:"rescale_betas_zero_snr"`
	InterpolationType   *string    `json:"interpolation_type"`
	UseKarrasSigmas     *bool      `json:"use_karras_sigmas"`
	SolverOrder         *int       `json:"solver_order"`
	AlgorithmType       *string    `json:"algorithm_type"`
	SolverType          *string    `json:"solver_type"`
	LowerOrderFinal     *bool      `json:"lower_order_final"`
	LambdaMinClipped    *float64   `json:"lambda_min_clipped"`
	VarianceType        *string    `json:"variance_type"`
}

// LoadConfig reads a scheduler_config.json (e.g. a model folder's
// scheduler/scheduler_config.json).
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("scheduler: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("scheduler: %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes scheduler_config.json contents. A key whose value has the wrong JSON type
// is an error naming the key; unknown keys are ignored.
func ParseConfig(data []byte) (Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(quoteNonFinite(data), &raw); err != nil {
		return Config{}, fmt.Errorf("parsing scheduler config: %w", err)
	}
	var cfg Config
	fields := map[string]any{
		"num_train_timesteps": &cfg.NumTrainTimesteps, "beta_start": &cfg.BetaStart,
		"beta_end": &cfg.BetaEnd, "beta_schedule": &cfg.BetaSchedule,
		"trained_betas": &cfg.TrainedBetas, "steps_offset": &cfg.StepsOffset,
		"set_alpha_to_one": &cfg.SetAlphaToOne, "skip_prk_steps": &cfg.SkipPRKSteps,
		"clip_sample": &cfg.ClipSample, "clip_sample_range": &cfg.ClipSampleRange,
		"prediction_type": &cfg.PredictionType, "timestep_spacing": &cfg.TimestepSpacing,
		"thresholding": &cfg.Thresholding, "rescale_betas_zero_snr": &cfg.RescaleBetasZeroSNR,
		"interpolation_type": &cfg.InterpolationType, "use_karras_sigmas": &cfg.UseKarrasSigmas,
		"solver_order": &cfg.SolverOrder, "algorithm_type": &cfg.AlgorithmType,
		"solver_type": &cfg.SolverType, "lower_order_final": &cfg.LowerOrderFinal,
		"lambda_min_clipped": &cfg.LambdaMinClipped, "variance_type": &cfg.VarianceType,
	}
	for key, msg := range raw {
		dst, ok := fields[key]
		if !ok || bytes.Equal(bytes.TrimSpace(msg), []byte("null")) {
			continue // null means "use the default", as in Python
		}
		if key == "lambda_min_clipped" {
			// Python writes -inf as the bare token -Infinity.
			if s := string(bytes.TrimSpace(msg)); s == `"-Infinity"` || s == `"Infinity"` || s == `"NaN"` {
				v := math.Inf(-1)
				switch s {
				case `"Infinity"`:
					v = math.Inf(1)
				case `"NaN"`:
					v = math.NaN()
				}
				cfg.LambdaMinClipped = &v
				continue
			}
		}
		if err := json.Unmarshal(msg, dst); err != nil {
			return Config{}, fmt.Errorf("scheduler config key %q: value %s: %w", key, msg, err)
		}
	}
	return cfg, nil
}

// quoteNonFinite turns the bare tokens -Infinity, Infinity and NaN that Python's json module
// writes (diffusers' default lambda_min_clipped is -inf) into JSON strings so encoding/json
// accepts the document.
func quoteNonFinite(data []byte) []byte {
	var out []byte
	inString, escaped := false, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			out = append(out, c)
			continue
		}
		if c == '"' {
			inString = true
			out = append(out, c)
			continue
		}
		matched := false
		for _, tok := range []string{"-Infinity", "Infinity", "NaN"} {
			if bytes.HasPrefix(data[i:], []byte(tok)) {
				out = append(out, '"')
				out = append(out, tok...)
				out = append(out, '"')
				i += len(tok) - 1
				matched = true
				break
			}
		}
		if !matched {
			out = append(out, c)
		}
	}
	return out
}

// maxTrainTimesteps bounds num_train_timesteps so a bad file cannot make huge tables.
const maxTrainTimesteps = 1 << 20

// params is a Config resolved against one scheduler's defaults and validated.
type params struct {
	numTrain         int
	betaStart        float64
	betaEnd          float64
	betaSchedule     string
	trainedBetas     []float64
	stepsOffset      int
	setAlphaToOne    bool
	skipPRK          bool
	clipSample       bool
	clipSampleRange  float64
	predictionType   string
	timestepSpacing  string
	useKarras        bool
	solverOrder      int
	solverType       string
	lowerOrderFinal  bool
	lambdaMinClipped float64
}

// defaults are the diffusers v0.21.4 constructor defaults shared by every scheduler used here;
// the per-scheduler differences are set in resolve.
func defaults() params {
	return params{
		numTrain: 1000, betaStart: 0.0001, betaEnd: 0.02, betaSchedule: "linear",
		predictionType: "epsilon", timestepSpacing: "linspace", clipSampleRange: 1,
		solverOrder: 2, solverType: "midpoint", lowerOrderFinal: true,
		lambdaMinClipped: math.Inf(-1),
	}
}

func unsupported(key string, value any, want string) error {
	return fmt.Errorf("scheduler config: %s = %v is not supported (want %s)", key, value, want)
}

// resolve applies cfg over the defaults of scheduler kind (one of the family names below) and
// rejects values this package does not implement, naming the key and value.
func resolve(kind string, cfg Config) (params, error) {
	p := defaults()
	switch kind {
	case "pndm":
		p.timestepSpacing = "leading"
	case "ddim":
		p.timestepSpacing = "leading"
		p.clipSample = true
		p.setAlphaToOne = true
	}
	setInt(&p.numTrain, cfg.NumTrainTimesteps)
	setF(&p.betaStart, cfg.BetaStart)
	setF(&p.betaEnd, cfg.BetaEnd)
	setS(&p.betaSchedule, cfg.BetaSchedule)
	if cfg.TrainedBetas != nil {
		p.trainedBetas = *cfg.TrainedBetas
	}
	setInt(&p.stepsOffset, cfg.StepsOffset)
	setS(&p.predictionType, cfg.PredictionType)
	setS(&p.timestepSpacing, cfg.TimestepSpacing)

	if p.numTrain < 2 || p.numTrain > maxTrainTimesteps {
		return p, unsupported("num_train_timesteps", p.numTrain, fmt.Sprintf("2 to %d", maxTrainTimesteps))
	}
	if p.trainedBetas != nil && len(p.trainedBetas) != p.numTrain {
		return p, fmt.Errorf("scheduler config: trained_betas has %d values, num_train_timesteps is %d", len(p.trainedBetas), p.numTrain)
	}
	if p.trainedBetas == nil {
		switch p.betaSchedule {
		case "linear", "scaled_linear", "squaredcos_cap_v2":
		default:
			return p, unsupported("beta_schedule", p.betaSchedule, "linear, scaled_linear or squaredcos_cap_v2")
		}
	}
	switch p.predictionType {
	case "epsilon", "v_prediction":
	default:
		return p, unsupported("prediction_type", p.predictionType, "epsilon or v_prediction")
	}
	switch p.timestepSpacing {
	case "linspace", "leading", "trailing":
	default:
		return p, unsupported("timestep_spacing", p.timestepSpacing, "linspace, leading or trailing")
	}

	switch kind {
	case "pndm":
		setB(&p.setAlphaToOne, cfg.SetAlphaToOne)
		setB(&p.skipPRK, cfg.SkipPRKSteps)
		if !p.skipPRK {
			return p, unsupported("skip_prk_steps", false, "true: only the PLMS part of PNDM is implemented")
		}
	case "ddim":
		setB(&p.setAlphaToOne, cfg.SetAlphaToOne)
		setB(&p.clipSample, cfg.ClipSample)
		setF(&p.clipSampleRange, cfg.ClipSampleRange)
		if err := rejectTrue("thresholding", cfg.Thresholding); err != nil {
			return p, err
		}
		if err := rejectTrue("rescale_betas_zero_snr", cfg.RescaleBetasZeroSNR); err != nil {
			return p, err
		}
	case "euler", "lms":
		setB(&p.useKarras, cfg.UseKarrasSigmas)
		if kind == "euler" && cfg.InterpolationType != nil && *cfg.InterpolationType != "linear" {
			return p, unsupported("interpolation_type", *cfg.InterpolationType, "linear")
		}
	case "dpm":
		setB(&p.useKarras, cfg.UseKarrasSigmas)
		setInt(&p.solverOrder, cfg.SolverOrder)
		setS(&p.solverType, cfg.SolverType)
		setB(&p.lowerOrderFinal, cfg.LowerOrderFinal)
		setF(&p.lambdaMinClipped, cfg.LambdaMinClipped)
		if err := rejectTrue("thresholding", cfg.Thresholding); err != nil {
			return p, err
		}
		if cfg.AlgorithmType != nil && *cfg.AlgorithmType != "dpmsolver++" {
			return p, unsupported("algorithm_type", *cfg.AlgorithmType, "dpmsolver++")
		}
		if p.solverOrder != 1 && p.solverOrder != 2 {
			return p, unsupported("solver_order", p.solverOrder, "1 or 2")
		}
		if p.solverType != "midpoint" && p.solverType != "heun" {
			return p, unsupported("solver_type", p.solverType, "midpoint or heun")
		}
		if cfg.VarianceType != nil {
			return p, unsupported("variance_type", *cfg.VarianceType, "null")
		}
	}
	return p, nil
}

func rejectTrue(key string, v *bool) error {
	if v != nil && *v {
		return unsupported(key, true, "false")
	}
	return nil
}

func setInt(dst *int, v *int) {
	if v != nil {
		*dst = *v
	}
}

func setF(dst *float64, v *float64) {
	if v != nil {
		*dst = *v
	}
}

func setS(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

func setB(dst *bool, v *bool) {
	if v != nil {
		*dst = *v
	}
}
