package pipeline

import (
	"fmt"
	"path/filepath"

	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/scheduler"
	"github.com/smallsd/smallsd/tokenizer"
	"github.com/smallsd/smallsd/unet"
	"github.com/smallsd/smallsd/vae"
	"github.com/smallsd/smallsd/weights"
)

// loader loads the components of one model folder.
type loader struct {
	m       *weights.Model
	variant string
	half    bool // weights.WithHalf
	bf16    bool // weights.WithBF16 (Precision BF16)
}

// component returns the folder of component name after checking its class against the ones
// this package can build (none to check when classes is empty).
func (l loader) component(name string, classes ...string) (string, error) {
	dir, class, err := l.m.Component(name)
	if err != nil {
		return "", fmt.Errorf("pipeline: component %s: %w", name, err)
	}
	if len(classes) == 0 {
		return dir, nil
	}
	for _, c := range classes {
		if class == c {
			return dir, nil
		}
	}
	return "", fmt.Errorf("pipeline: component %s in %s is a %s; only %v is supported", name, l.m.Dir, class, classes)
}

// weightOpts picks the variant's weights where the component has them, and half weights when
// asked for.
func (l loader) weightOpts(dir string) []weights.Option {
	var opts []weights.Option
	if l.half {
		opts = append(opts, weights.WithHalf())
	}
	if l.bf16 {
		opts = append(opts, weights.WithBF16())
	}
	if l.variant == "" {
		return opts
	}
	opt := weights.WithVariant(l.variant)
	if _, err := weights.WeightFile(dir, opt); err != nil {
		return opts
	}
	return append(opts, opt)
}

func (l loader) tokenizer() (*tokenizer.Tokenizer, error) {
	dir, err := l.component("tokenizer")
	if err != nil {
		return nil, err
	}
	t, err := tokenizer.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("pipeline: component tokenizer: %w", err)
	}
	return t, nil
}

func (l loader) textEncoder() (*clip.TextModel, error) {
	dir, err := l.component("text_encoder", "CLIPTextModel")
	if err != nil {
		return nil, err
	}
	m, err := clip.Load(dir, l.weightOpts(dir)...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: component text_encoder: %w", err)
	}
	return m, nil
}

func (l loader) unet() (*unet.Model, error) {
	dir, err := l.component("unet", "UNet2DConditionModel")
	if err != nil {
		return nil, err
	}
	m, err := unet.Load(dir, l.weightOpts(dir)...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: component unet: %w", err)
	}
	return m, nil
}

func (l loader) vae() (*vae.Decoder, error) {
	dir, err := l.component("vae", "AutoencoderKL")
	if err != nil {
		return nil, err
	}
	d, err := vae.LoadDecoder(dir, l.weightOpts(dir)...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: component vae: %w", err)
	}
	return d, nil
}

func (l loader) vaeEncoder() (*vae.Encoder, error) {
	dir, err := l.component("vae", "AutoencoderKL")
	if err != nil {
		return nil, err
	}
	e, err := vae.LoadEncoder(dir, l.weightOpts(dir)...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: component vae: %w", err)
	}
	return e, nil
}

// scheduler reads the scheduler config and the class model_index.json (else the config's
// _class_name) gives it.
func (l loader) scheduler() (scheduler.Config, string, error) {
	dir, class, err := l.m.Component("scheduler")
	if err != nil {
		return scheduler.Config{}, "", fmt.Errorf("pipeline: component scheduler: %w", err)
	}
	path := filepath.Join(dir, "scheduler_config.json")
	cfg, err := scheduler.LoadConfig(path)
	if err != nil {
		return scheduler.Config{}, "", fmt.Errorf("pipeline: component scheduler: %w", err)
	}
	if class == "" {
		var named struct {
			Class string `json:"_class_name"`
		}
		if err := weights.ReadConfig(path, &named); err != nil {
			return scheduler.Config{}, "", fmt.Errorf("pipeline: component scheduler: %w", err)
		}
		class = named.Class
	}
	return cfg, class, nil
}

// schedulerClasses maps diffusers' scheduler classes to the scheduler package's names.
var schedulerClasses = map[string]string{
	"PNDMScheduler":                   "pndm",
	"DDIMScheduler":                   "ddim",
	"EulerDiscreteScheduler":          "euler",
	"EulerAncestralDiscreteScheduler": "euler_a",
	"LMSDiscreteScheduler":            "lms",
	"DPMSolverMultistepScheduler":     "dpmpp_2m",
}

// SchedulerForClass returns the scheduler name (for Request.Scheduler) of a diffusers scheduler
// class as a model's scheduler config names it: PNDMScheduler → "pndm", DDIMScheduler → "ddim",
// EulerDiscreteScheduler → "euler", EulerAncestralDiscreteScheduler → "euler_a",
// LMSDiscreteScheduler → "lms", DPMSolverMultistepScheduler → "dpmpp_2m", or "dpmpp_2m_karras"
// when cfg sets use_karras_sigmas. Other classes are an error naming the class.
func SchedulerForClass(class string, cfg scheduler.Config) (string, error) {
	name, ok := schedulerClasses[class]
	if !ok {
		return "", fmt.Errorf("scheduler class %q has no counterpart here (known: PNDMScheduler, DDIMScheduler, "+
			"EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, LMSDiscreteScheduler, DPMSolverMultistepScheduler)", class)
	}
	if name == "dpmpp_2m" && cfg.UseKarrasSigmas != nil && *cfg.UseKarrasSigmas {
		name = "dpmpp_2m_karras"
	}
	return name, nil
}

// samplerNames are the names AUTOMATIC1111's web UI gives the same samplers (PNDM is the
// web UI's "PLMS"; the name diffusers uses is kept, as the parameters format allows any).
var samplerNames = map[string]string{
	"pndm":            "PNDM",
	"ddim":            "DDIM",
	"euler":           "Euler",
	"euler_a":         "Euler a",
	"lms":             "LMS",
	"dpmpp_2m":        "DPM++ 2M",
	"dpmpp_2m_karras": "DPM++ 2M Karras",
}

// SamplerName returns the name AUTOMATIC1111's web UI shows for a scheduler ("euler_a" →
// "Euler a", "dpmpp_2m_karras" → "DPM++ 2M Karras", "pndm" → "PNDM"); unknown names are
// returned unchanged.
func SamplerName(scheduler string) string {
	if s, ok := samplerNames[scheduler]; ok {
		return s
	}
	return scheduler
}
