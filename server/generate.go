package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/smallsd/smallsd/pipeline"
	"github.com/smallsd/smallsd/pipeline/pngmeta"
)

// output is what a job made: PNG files carrying their parameters chunk, and what the web UI
// reports about them.
type output struct {
	pngs      [][]byte
	infotexts []string
	seeds     []int64
	prompts   []string
	negatives []string
	// nsfw says per image whether the safety checker flagged it (the image is black); nil
	// when the pipeline has no checker.
	nsfw  []bool
	start time.Time
}

// generate runs a job's iterations: iteration k generates gp.req with seed+k. It returns what was
// finished when an iteration fails or is cancelled.
func (s *Server) generate(j *job, gp genParams) (*output, error) {
	out := &output{start: time.Now()}
	for k := range gp.iters {
		req := gp.req
		req.Seed += int64(k)
		req.Progress = func(pr pipeline.Progress) { j.report(k, pr) }
		req.PreviewEvery = s.previewEvery
		res, err := s.p.Generate(j.ctx, req)
		if err != nil {
			return out, err
		}
		s.observeGeneration(res.Timings.Total)
		s.metrics.images.Add(float64(len(res.Images)))
		for i, img := range res.Images {
			info := res.Parameters(i).String()
			var buf bytes.Buffer
			if err := pngmeta.EncodeWithText(&buf, img, pngmeta.Text{Keyword: pngmeta.ParametersKeyword, Value: info}); err != nil {
				return out, err
			}
			out.pngs = append(out.pngs, buf.Bytes())
			out.infotexts = append(out.infotexts, info)
			out.seeds = append(out.seeds, res.Request.Seed)
			out.prompts = append(out.prompts, req.Prompt)
			out.negatives = append(out.negatives, req.NegativePrompt)
			if res.NSFW != nil {
				out.nsfw = append(out.nsfw, res.NSFW[i])
			}
		}
	}
	return out, nil
}

// generateSafely is generate with a panic turned into an error (and logged with its stack), so
// that none escapes from the goroutine that streams a job and the job still leaves the queue.
func (s *Server) generateSafely(j *job, gp genParams) (out *output, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("panic generating", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error: %v", v)
		}
	}()
	return s.generate(j, gp)
}

// runJob queues and runs a job for the request's context. The job has left the queue when it
// returns. The error is errQueueFull or errDraining (answer 503), the context's cause
// (errInterrupted, errDraining, or context.Canceled when the client went away), or the
// pipeline's.
func (s *Server) runJob(ctx context.Context, gp genParams, watch func(*job)) (*output, error) {
	j := newJob(ctx, gp.iters)
	defer j.cancel(nil)
	if err := s.q.enter(j); err != nil {
		return nil, err
	}
	defer s.q.leave(j)
	if watch != nil {
		watch(j)
	}
	if err := s.q.wait(j); err != nil {
		return nil, err
	}
	out, err := s.generateSafely(j, gp)
	switch {
	case err != nil && j.ctx.Err() != nil:
		err = context.Cause(j.ctx)
	case errors.Is(err, pipeline.ErrOverBudget): // too large an image or batch: the client's to change
		field := "width"
		if gp.req.NumImages > 1 {
			field = "batch_size"
		}
		err = badField(field, "%s", strings.TrimPrefix(err.Error(), "pipeline: "))
	}
	return out, err
}

// txt2imgResponse is the web UI's TextToImageResponse.
type txt2imgResponse struct {
	Images     []string       `json:"images"`
	Parameters txt2imgRequest `json:"parameters"`
	Info       string         `json:"info"`
}

// txt2imgInfo is the web UI's Processed.js(), sent as a JSON string in "info".
type txt2imgInfo struct {
	Prompt                string         `json:"prompt"`
	AllPrompts            []string       `json:"all_prompts"`
	NegativePrompt        string         `json:"negative_prompt"`
	AllNegativePrompts    []string       `json:"all_negative_prompts"`
	Seed                  int64          `json:"seed"`
	AllSeeds              []int64        `json:"all_seeds"`
	Subseed               int64          `json:"subseed"`
	AllSubseeds           []int64        `json:"all_subseeds"`
	SubseedStrength       float64        `json:"subseed_strength"`
	Width                 int            `json:"width"`
	Height                int            `json:"height"`
	SamplerName           string         `json:"sampler_name"`
	CFGScale              float64        `json:"cfg_scale"`
	Steps                 int            `json:"steps"`
	DenoisingStrength     float64        `json:"denoising_strength"`
	BatchSize             int            `json:"batch_size"`
	RestoreFaces          bool           `json:"restore_faces"`
	SDModelName           string         `json:"sd_model_name"`
	SeedResizeFromW       int            `json:"seed_resize_from_w"`
	SeedResizeFromH       int            `json:"seed_resize_from_h"`
	ExtraGenerationParams map[string]any `json:"extra_generation_params"`
	IndexOfFirstImage     int            `json:"index_of_first_image"`
	Infotexts             []string       `json:"infotexts"`
	Styles                []string       `json:"styles"`
	JobTimestamp          string         `json:"job_timestamp"`
	ClipSkip              int            `json:"clip_skip"`
	Version               string         `json:"version"`
	Interrupted           bool           `json:"interrupted,omitempty"`
	// NSFW (smallsd's) says per image whether the safety checker flagged it (the image is then
	// black); absent when the model has no checker.
	NSFW []bool `json:"nsfw,omitempty"`
}

func (s *Server) info(gp genParams, out *output, interrupted bool) txt2imgInfo {
	r := gp.req
	subseeds := make([]int64, len(out.seeds))
	for i := range subseeds {
		subseeds[i] = -1
	}
	return txt2imgInfo{
		Prompt: r.Prompt, AllPrompts: nonNil(out.prompts), NegativePrompt: r.NegativePrompt,
		AllNegativePrompts: nonNil(out.negatives), Seed: r.Seed, AllSeeds: nonNil(out.seeds), Subseed: -1,
		AllSubseeds: subseeds, Width: r.Width, Height: r.Height, SamplerName: webUISampler(r.Scheduler),
		CFGScale: r.GuidanceScale, Steps: r.Steps, DenoisingStrength: r.Strength, BatchSize: r.NumImages, SDModelName: s.p.Name(),
		SeedResizeFromW: -1, SeedResizeFromH: -1, ExtraGenerationParams: map[string]any{},
		Infotexts: nonNil(out.infotexts), Styles: []string{}, JobTimestamp: out.start.UTC().Format("20060102150405"),
		ClipSkip: 1, Version: "smallsd", Interrupted: interrupted, NSFW: out.nsfw,
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Server) handleTxt2img(w http.ResponseWriter, r *http.Request) {
	gp, err := s.decodeTxt2img(r)
	if err != nil {
		writeRequestError(w, err)
		return
	}
	s.respond(w, r, gp)
}

// respond runs a txt2img or img2img job and answers with the images.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, gp genParams) {
	out, err := s.runJob(r.Context(), gp, nil)
	interrupted := errors.Is(err, errInterrupted)
	if interrupted && out != nil && len(out.pngs) > 0 {
		err = nil // the web UI answers an interrupted job with the images it has
	}
	if err != nil {
		s.writeJobError(w, err)
		return
	}
	resp := txt2imgResponse{Images: []string{}, Parameters: gp.echo}
	if gp.sendImages {
		for _, b := range out.pngs {
			resp.Images = append(resp.Images, base64.StdEncoding.EncodeToString(b))
		}
	}
	info, _ := jsonString(s.info(gp, out, interrupted))
	resp.Info = info
	writeJSON(w, http.StatusOK, resp)
}

// writeJobError answers a job that did not finish.
func (s *Server) writeJobError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errQueueFull), errors.Is(err, errDraining):
		s.writeBusy(w, err)
	case errors.Is(err, errInterrupted):
		writeError(w, http.StatusConflict, "Interrupted", "the job was interrupted (POST /sdapi/v1/interrupt) before an image was done", "")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if sw, ok := w.(*statusWriter); ok { // the client went away: nobody reads an answer
			sw.status = statusClientClosed
		}
	default:
		var fe *fieldError
		if errors.As(pipelineFieldError(err), &fe) {
			writeRequestError(w, fe)
			return
		}
		writeError(w, http.StatusInternalServerError, "GenerationError", err.Error(), "")
	}
}

func (s *Server) handleInterrupt(w http.ResponseWriter, r *http.Request) {
	s.q.interrupt()
	writeJSON(w, http.StatusOK, nil)
}

// progressResponse is the web UI's ProgressResponse.
type progressResponse struct {
	Progress     float64       `json:"progress"`
	ETARelative  float64       `json:"eta_relative"`
	State        progressState `json:"state"`
	CurrentImage *string       `json:"current_image"`
	TextInfo     *string       `json:"textinfo"`
	CurrentTask  *string       `json:"current_task"`
}

type progressState struct {
	Skipped       bool   `json:"skipped"`
	Interrupted   bool   `json:"interrupted"`
	Job           string `json:"job"`
	JobCount      int    `json:"job_count"`
	JobTimestamp  string `json:"job_timestamp"`
	JobNo         int    `json:"job_no"`
	SamplingStep  int    `json:"sampling_step"`
	SamplingSteps int    `json:"sampling_steps"`
	QueueLength   int    `json:"queue_length"` // smallsd's: requests waiting behind the running one
}

func (s *Server) handleProgress(w http.ResponseWriter, r *http.Request) {
	_, waiting := s.q.lengths()
	resp := progressResponse{State: progressState{QueueLength: waiting}}
	if j := s.q.current(); j != nil {
		st := j.status()
		resp.Progress = st.Progress
		resp.ETARelative = st.ETA.Seconds()
		resp.State.Interrupted = errors.Is(context.Cause(j.ctx), errInterrupted)
		resp.State.JobCount = st.Iters
		resp.State.JobNo = st.Iter
		resp.State.JobTimestamp = j.queued.UTC().Format("20060102150405")
		resp.State.SamplingStep = st.Step
		resp.State.SamplingSteps = st.Total
		if skip := r.URL.Query().Get("skip_current_image"); skip != "true" && skip != "1" {
			if img := st.preview(); img != nil {
				b64 := base64.StdEncoding.EncodeToString(encodePNG(img))
				resp.CurrentImage = &b64
			}
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleSamplers(w http.ResponseWriter, r *http.Request) {
	type item struct {
		Name    string         `json:"name"`
		Aliases []string       `json:"aliases"`
		Options map[string]any `json:"options"`
	}
	var list []item
	for _, sm := range samplers {
		list = append(list, item{Name: sm.Name, Aliases: append([]string{sm.Scheduler}, sm.Aliases...), Options: map[string]any{}})
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	name := s.p.Name()
	writeJSON(w, http.StatusOK, []map[string]any{{
		"title": name, "model_name": name, "hash": nil, "sha256": nil, "filename": name, "config": nil,
	}})
}

// handleSchedulers lists the web UI's noise schedules (its "scheduler" field) that apply here.
func (s *Server) handleSchedulers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, []map[string]any{
		{"name": "automatic", "label": "Automatic", "aliases": nil, "default_rho": -1, "need_inner_model": false},
		{"name": "karras", "label": "Karras", "aliases": nil, "default_rho": 7.0, "need_inner_model": false},
	})
}

// handleSetOptions accepts the web UI's settings: sd_model_checkpoint must name the loaded model
// (there is only one), other settings are accepted and ignored — the server keeps no state.
func (s *Server) handleSetOptions(w http.ResponseWriter, r *http.Request) {
	var opts map[string]any
	if err := decodeJSON(r.Body, &opts); err != nil {
		writeRequestError(w, err)
		return
	}
	if v, ok := opts["sd_model_checkpoint"]; ok && v != s.p.Name() {
		writeRequestError(w, badField("sd_model_checkpoint", "%v is not loaded; this server has only %q", v, s.p.Name()))
		return
	}
	writeJSON(w, http.StatusOK, nil)
}

func (s *Server) handleOptions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"sd_model_checkpoint":      s.p.Name(),
		"sd_checkpoint_hash":       nil,
		"samples_format":           "png",
		"enable_pnginfo":           true,
		"CLIP_stop_at_last_layers": 1,
		"eta_noise_seed_delta":     0,
		"sd_vae":                   "Automatic",
	})
}
