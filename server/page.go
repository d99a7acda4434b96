package server

import (
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/smallsd/smallsd/pipeline"
)

//go:embed page.html
var pageHTML []byte

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
	w.Write(pageHTML)
}

// pageConfig is what the page needs to fill in its form.
type pageConfig struct {
	Model    string   `json:"model"`
	Width    int      `json:"width"`
	Height   int      `json:"height"`
	Steps    int      `json:"steps"`
	CFGScale float64  `json:"cfg_scale"`
	Sampler  string   `json:"sampler"`
	Samplers []string `json:"samplers"`
	Limits   Limits   `json:"limits"`
}

func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	wd, ht := s.p.DefaultSize()
	writeJSON(w, http.StatusOK, pageConfig{
		Model: s.p.Name(), Width: wd, Height: ht, Steps: pipeline.DefaultSteps, CFGScale: pipeline.DefaultGuidance,
		Sampler: webUISampler(s.p.DefaultScheduler()), Samplers: samplerNames(), Limits: s.limits,
	})
}

// Page events, sent as Server-Sent Events (event name, then one JSON data line).
type (
	queuedEvent struct {
		Position int `json:"position"`
	}
	progressEvent struct {
		Step     int     `json:"step"`
		Total    int     `json:"total"`
		Iter     int     `json:"iter"`
		Iters    int     `json:"iters"`
		Progress float64 `json:"progress"`
		Elapsed  float64 `json:"elapsed"`
		ETA      float64 `json:"eta"`
		Preview  string  `json:"preview,omitempty"` // data: URL of a PNG
	}
	doneImage struct {
		PNG      string `json:"png"` // base64
		Infotext string `json:"infotext"`
		Seed     int64  `json:"seed"`
		NSFW     bool   `json:"nsfw,omitempty"` // flagged by the safety checker: the image is black
	}
	doneEvent struct {
		Images []doneImage `json:"images"`
		Info   txt2imgInfo `json:"info"`
		Timing float64     `json:"seconds"`
	}
	errorEvent struct {
		Error  string `json:"error"`
		Field  string `json:"field,omitempty"`
		Status int    `json:"status"`
	}
)

// Progress events are sent at most this often (the last step's always).
const progressInterval = 150 * time.Millisecond

// keepAlive is how often a comment line is sent while nothing happens, so that proxies keep the
// stream open.
const keepAlive = 15 * time.Second

// handleStream is the page's generation: the txt2img body in, Server-Sent Events out: "queued"
// while waiting, "progress" with a preview while generating, then "done" with the images or
// "error". A bad request (422, 413) or a full queue (503) is answered as a plain JSON error before
// the stream starts. Closing the connection cancels the job.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	gp, err := s.decodeTxt2img(r)
	if err != nil {
		writeRequestError(w, err)
		return
	}
	type result struct {
		out *output
		err error
	}
	started := make(chan *job, 1)
	done := make(chan result, 1)
	go func() {
		out, err := s.runJob(r.Context(), gp, func(j *job) { started <- j })
		done <- result{out, err}
	}()
	var j *job
	select {
	case j = <-started:
	case res := <-done: // refused at once: queue full or draining
		s.writeJobError(w, res.err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(event string, v any) {
		data, _ := jsonString(v)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
		rc.Flush()
	}
	var last time.Time
	lastIter, lastStep, lastPreview := -1, -1, -1
	throttle := time.NewTimer(time.Hour)
	throttle.Stop()
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	update := func() {
		st := j.status()
		if st.Pos > 0 {
			send("queued", queuedEvent{Position: st.Pos})
			return
		}
		if st.Total == 0 {
			return // started, no step reported yet
		}
		if wait := progressInterval - time.Since(last); wait > 0 && st.Step < st.Total {
			throttle.Reset(wait)
			return
		}
		if st.Iter == lastIter && st.Step == lastStep {
			return
		}
		last, lastIter, lastStep = time.Now(), st.Iter, st.Step
		ev := progressEvent{Step: st.Step, Total: st.Total, Iter: st.Iter, Iters: st.Iters, Progress: st.Progress,
			Elapsed: st.Elapsed.Seconds(), ETA: st.ETA.Seconds()}
		if img := st.preview(); img != nil && st.PreviewAt != lastPreview { // only new previews
			lastPreview = st.PreviewAt
			ev.Preview = "data:image/png;base64," + base64.StdEncoding.EncodeToString(encodePNG(img))
		}
		send("progress", ev)
	}
	update()
	for {
		select {
		case <-j.moved:
			update()
		case <-throttle.C:
			update()
		case <-ping.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			rc.Flush()
		case res := <-done:
			s.finishStream(w, send, gp, res.out, res.err)
			return
		}
	}
}

// finishStream sends the last event of a stream.
func (s *Server) finishStream(w http.ResponseWriter, send func(string, any), gp genParams, out *output, err error) {
	interrupted := errors.Is(err, errInterrupted)
	switch {
	case err == nil || interrupted && out != nil && len(out.pngs) > 0:
		ev := doneEvent{Info: s.info(gp, out, interrupted), Timing: time.Since(out.start).Seconds()}
		for i, b := range out.pngs {
			ev.Images = append(ev.Images, doneImage{PNG: base64.StdEncoding.EncodeToString(b),
				Infotext: out.infotexts[i], Seed: out.seeds[i], NSFW: out.nsfw != nil && out.nsfw[i]})
		}
		send("done", ev)
	case errors.Is(err, context.Canceled) && !interrupted:
		if sw, ok := w.(*statusWriter); ok {
			sw.status = statusClientClosed
		}
	case interrupted:
		send("error", errorEvent{Error: "interrupted", Status: http.StatusConflict})
	case errors.Is(err, errDraining):
		send("error", errorEvent{Error: "the server is shutting down", Status: http.StatusServiceUnavailable})
	default:
		ev := errorEvent{Error: err.Error(), Status: http.StatusInternalServerError}
		var fe *fieldError
		if errors.As(pipelineFieldError(err), &fe) {
			ev = errorEvent{Error: fe.Msg, Field: fe.Field, Status: http.StatusUnprocessableEntity}
		}
		send("error", ev)
	}
}
