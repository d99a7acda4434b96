package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"unicode"

	"github.com/smallsd/smallsd/pipeline"
)

// Limits bound what one request may ask for, on top of the pipeline's own checks. A zero field
// means its default.
type Limits struct {
	MaxSide  int // width and height, pixels (default 2048)
	MaxSteps int // steps (default 1000)
	MaxBatch int // batch_size: images per pipeline call (default 8)
	MaxIters int // n_iter: pipeline calls per request (default 16)
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxSide, 2048)
	def(&l.MaxSteps, 1000)
	def(&l.MaxBatch, 8)
	def(&l.MaxIters, 16)
	return l
}

// txt2imgRequest is the body of POST /sdapi/v1/txt2img (and of the page's POST /api/generate):
// the fields of the web UI's StableDiffusionTxt2ImgProcessingAPI that smallsd honours, with the
// web UI's names and types. Missing or null fields take the pipeline's defaults; fields this
// server does not know are ignored, as the web UI ignores them; the ones it knows but cannot do
// (hires fix, face restoration, tiling, variation seeds, scripts) are accepted only at their
// defaults.
type txt2imgRequest struct {
	Prompt         string  `json:"prompt"`
	NegativePrompt string  `json:"negative_prompt"`
	Seed           int64   `json:"seed"`
	Steps          int     `json:"steps"`
	CFGScale       float64 `json:"cfg_scale"`
	Width          int     `json:"width"`
	Height         int     `json:"height"`
	SamplerName    string  `json:"sampler_name"`
	SamplerIndex   string  `json:"sampler_index"`
	Scheduler      string  `json:"scheduler"`
	BatchSize      int     `json:"batch_size"`
	NIter          int     `json:"n_iter"`
	SendImages     bool    `json:"send_images"`
	SaveImages     bool    `json:"save_images"`

	EnableHR        bool     `json:"enable_hr"`
	RestoreFaces    *bool    `json:"restore_faces"`
	Tiling          *bool    `json:"tiling"`
	SubseedStrength float64  `json:"subseed_strength"`
	ScriptName      *string  `json:"script_name"`
	Styles          []string `json:"styles"`
}

// fieldError is a request field with a bad value: the server answers 422 naming the field.
type fieldError struct {
	Field string
	Msg   string
}

func (e *fieldError) Error() string { return e.Field + ": " + e.Msg }

// badField makes a *fieldError.
func badField(field, format string, args ...any) *fieldError {
	return &fieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// job parameters decoded and checked: the pipeline request of the first iteration (resolved:
// defaults filled in, the seed chosen) and the number of iterations.
type genParams struct {
	req        pipeline.Request
	iters      int
	sendImages bool
	echo       txt2imgRequest // the request as the client sent it, defaults filled in
}

// decodeTxt2img reads and checks a txt2img body. Its errors are *fieldError (bad JSON included,
// as FastAPI answers 422 for it too) or *http.MaxBytesError.
func (s *Server) decodeTxt2img(r *http.Request) (genParams, error) {
	w, h := s.p.DefaultSize()
	t := txt2imgRequest{Seed: -1, Steps: pipeline.DefaultSteps, CFGScale: pipeline.DefaultGuidance,
		Width: w, Height: h, BatchSize: 1, NIter: 1, SendImages: true}
	if err := decodeJSON(r.Body, &t); err != nil {
		return genParams{}, err
	}
	return s.check(t, pipeline.Request{})
}

// decodeJSON decodes one JSON object from body into v, naming the field of a type error.
func decodeJSON(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON object")
	}
	var mbe *http.MaxBytesError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mbe):
		return mbe
	case errors.As(err, &te) && te.Field != "":
		return badField(te.Field, "want a JSON %s, got %s", jsonType(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.EOF):
		return badField("body", "empty; want a JSON object")
	default:
		return badField("body", "not a JSON object: %v", err)
	}
}

// jsonType names a Go kind as JSON Schema does.
func jsonType(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "integer"
	case strings.HasPrefix(kind, "float"):
		return "number"
	case kind == "bool":
		return "boolean"
	case kind == "slice":
		return "array"
	case kind == "ptr":
		return "value of another type"
	}
	return kind
}

// check checks the fields and resolves the pipeline request: base (its image-to-image fields)
// with t's.
func (s *Server) check(t txt2imgRequest, base pipeline.Request) (genParams, error) {
	lim := s.limits
	switch {
	case t.EnableHR:
		return genParams{}, badField("enable_hr", "hires fix is not supported; want false")
	case t.RestoreFaces != nil && *t.RestoreFaces:
		return genParams{}, badField("restore_faces", "face restoration is not supported; want false")
	case t.Tiling != nil && *t.Tiling:
		return genParams{}, badField("tiling", "tiling is not supported; want false")
	case t.SubseedStrength != 0:
		return genParams{}, badField("subseed_strength", "variation seeds are not supported; want 0")
	case t.ScriptName != nil && *t.ScriptName != "":
		return genParams{}, badField("script_name", "scripts are not supported; want none")
	case len(t.Styles) > 0:
		return genParams{}, badField("styles", "styles are not supported; want none")
	case t.Steps < 1 || t.Steps > lim.MaxSteps:
		return genParams{}, badField("steps", "%d is out of range; want 1 … %d", t.Steps, lim.MaxSteps)
	case t.Width < 1 || t.Width > lim.MaxSide:
		return genParams{}, badField("width", "%d is out of range; want 8 … %d", t.Width, lim.MaxSide)
	case t.Height < 1 || t.Height > lim.MaxSide:
		return genParams{}, badField("height", "%d is out of range; want 8 … %d", t.Height, lim.MaxSide)
	case t.BatchSize < 1 || t.BatchSize > lim.MaxBatch:
		return genParams{}, badField("batch_size", "%d is out of range; want 1 … %d", t.BatchSize, lim.MaxBatch)
	case t.NIter < 1 || t.NIter > lim.MaxIters:
		return genParams{}, badField("n_iter", "%d is out of range; want 1 … %d", t.NIter, lim.MaxIters)
	}
	field, name := "sampler_name", t.SamplerName
	if name == "" && t.SamplerIndex != "" {
		field, name = "sampler_index", t.SamplerIndex
	}
	sched, err := s.schedulerFor(name, t.Scheduler)
	if err != nil {
		if fe, ok := err.(*fieldError); ok && fe.Field == "" {
			fe.Field = field
		}
		return genParams{}, err
	}
	cfg := t.CFGScale
	if cfg <= 1 {
		cfg = 1 // guidance off; 0 would mean "default" to the pipeline
	}
	base.Prompt, base.NegativePrompt, base.Width, base.Height = t.Prompt, t.NegativePrompt, t.Width, t.Height
	if base.Prompt, base.LoRAs, err = s.loras(t.Prompt); err != nil {
		return genParams{}, err
	}
	base.Steps, base.GuidanceScale, base.Seed, base.Scheduler, base.NumImages = t.Steps, cfg, t.Seed, sched, t.BatchSize
	base.PromptSyntax = pipeline.PromptSyntaxA1111 // the web UI's: "(word:1.3)", [word], up to 225 tokens
	req, err := s.p.Resolve(base)
	if err != nil {
		return genParams{}, pipelineFieldError(err)
	}
	return genParams{req: req, iters: t.NIter, sendImages: t.SendImages, echo: t}, nil
}

// reRequestField finds the Request field a pipeline error names ("pipeline: Request.Width 100 is
// not a positive multiple of 8").
var reRequestField = regexp.MustCompile(`Request\.(\w+)`)

// requestFields maps pipeline.Request fields to the web UI's names.
var requestFields = map[string]string{
	"Prompt": "prompt", "NegativePrompt": "negative_prompt", "Width": "width", "Height": "height",
	"Steps": "steps", "GuidanceScale": "cfg_scale", "Seed": "seed", "Scheduler": "sampler_name",
	"NumImages": "batch_size", "PromptSyntax": "prompt", "Init": "init_images", "Strength": "denoising_strength",
	"Mask": "mask", "PasteOriginal": "mask",
}

// pipelineFieldError turns a pipeline error about a request into a *fieldError naming the web
// UI's field; an error that names no field is returned as it is.
func pipelineFieldError(err error) error {
	m := reRequestField.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	f, ok := requestFields[m[1]]
	if !ok {
		f = snake(m[1])
	}
	msg := strings.TrimPrefix(err.Error(), "pipeline: ")
	return &fieldError{Field: f, Msg: strings.TrimLeft(strings.Replace(msg, m[0], "", 1), ": ")}
}

// snake turns a Go field name into snake_case: NegativePrompt → negative_prompt.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
