package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond every 5 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// longJob is a request that takes many seconds unless cancelled.
const longJob = `{"prompt": "slow", "steps": 1000, "width": 64, "height": 64, "sampler_name": "Euler", "seed": 1}`

// running waits until a job runs and has done a step, and returns it.
func running(t testing.TB, s *Server) *job {
	t.Helper()
	var j *job
	waitFor(t, 20*time.Second, "a job to run a step", func() bool {
		j = s.q.current()
		return j != nil && j.status().Step > 0
	})
	return j
}

// The queue: a full one gives 503 with Retry-After; interrupt stops the running job (409 when it
// had no image yet); /sdapi/v1/progress reports the running job with a preview.
func TestQueueFullInterruptProgress(t *testing.T) {
	s, ts := newTestServer(t, WithQueue(1), WithPreviewEvery(1))
	type answer struct {
		code int
		body []byte
	}
	first := make(chan answer, 1)
	go func() {
		code, _, b := post(t, context.Background(), ts.URL+"/sdapi/v1/txt2img", longJob)
		first <- answer{code, b}
	}()
	running(t, s)
	second := make(chan answer, 1)
	go func() {
		code, _, b := post(t, context.Background(), ts.URL+"/sdapi/v1/txt2img", `{"steps": 1, "width": 64, "height": 64}`)
		second <- answer{code, b}
	}()
	waitFor(t, 5*time.Second, "the second request to wait", func() bool { _, w := s.q.lengths(); return w == 1 })
	code, h, b := post(t, context.Background(), ts.URL+"/sdapi/v1/txt2img", `{"steps": 1}`)
	if code != 503 || h.Get("Retry-After") == "" {
		t.Errorf("third request with a full queue: %d (Retry-After %q) %s", code, h.Get("Retry-After"), b)
	}
	t.Logf("full queue: %d, Retry-After %s", code, h.Get("Retry-After"))

	code, b = get(t, ts.URL+"/sdapi/v1/progress")
	var pr progressResponse
	if err := json.Unmarshal(b, &pr); err != nil || code != 200 {
		t.Fatalf("progress: %d %s", code, b)
	}
	if pr.State.SamplingSteps != 1000 || pr.State.SamplingStep < 1 || pr.Progress <= 0 || pr.CurrentImage == nil ||
		pr.State.JobCount != 1 || pr.State.QueueLength != 1 {
		t.Errorf("progress %+v", pr)
	} else if img, _ := png.Decode(base64.NewDecoder(base64.StdEncoding, strings.NewReader(*pr.CurrentImage))); img == nil || img.Bounds().Dx() != 8 {
		t.Errorf("current_image is not an 8×8 PNG")
	}
	t.Logf("progress: %.3f, eta %.1f s, step %d/%d", pr.Progress, pr.ETARelative, pr.State.SamplingStep, pr.State.SamplingSteps)
	if _, b := get(t, ts.URL+"/sdapi/v1/progress?skip_current_image=true"); !strings.Contains(string(b), `"current_image":null`) {
		t.Errorf("skip_current_image: %s", b)
	}

	t0 := time.Now()
	if code, _, _ := post(t, context.Background(), ts.URL+"/sdapi/v1/interrupt", ""); code != 200 {
		t.Errorf("interrupt: %d", code)
	}
	a := <-first
	t.Logf("interrupted job answered %d after %v", a.code, time.Since(t0))
	if a.code != 409 || !strings.Contains(string(a.body), "Interrupted") {
		t.Errorf("interrupted job: %d %s", a.code, a.body)
	}
	if a := <-second; a.code != 200 {
		t.Errorf("the waiting job after the interrupt: %d %s", a.code, a.body)
	}
}

// A client that goes away cancels its job: the running one within a UNet step, a waiting one at
// once.
func TestDisconnectCancels(t *testing.T) {
	s, ts := newTestServer(t, WithQueue(2))
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	doneA := make(chan int, 1)
	go func() { code, _, _ := post(t, ctxA, ts.URL+"/sdapi/v1/txt2img", longJob); doneA <- code }()
	ja := running(t, s)

	ctxB, cancelB := context.WithCancel(context.Background())
	doneB := make(chan int, 1)
	go func() { code, _, _ := post(t, ctxB, ts.URL+"/api/generate", longJob); doneB <- code }()
	waitFor(t, 5*time.Second, "the second job to wait", func() bool { _, w := s.q.lengths(); return w == 1 })
	cancelB()
	<-doneB
	waitFor(t, 2*time.Second, "the waiting job to leave the queue", func() bool { _, w := s.q.lengths(); return w == 0 })
	if s.q.current() != ja {
		t.Fatal("the running job changed")
	}

	step := ja.status().Step
	t0 := time.Now()
	cancelA()
	<-doneA
	waitFor(t, 5*time.Second, "the running job to stop", func() bool { return s.q.current() == nil })
	after := ja.status().Step
	t.Logf("running job cancelled at step %d, stopped at step %d of 1000 after %v", step, after, time.Since(t0))
	if after >= 1000 || after > step+3 {
		t.Errorf("the job went on to step %d after the client left at step %d", after, step)
	}
	if !strings.Contains(metricsText(t, ts.URL), `code="499"`) {
		t.Errorf("metrics count no 499 (client went away)")
	}
}

func metricsText(t testing.TB, url string) string {
	code, b := get(t, url+"/metrics")
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	return string(b)
}

// /metrics, and Drain: /healthz and new work get 503.
func TestMetricsHealthDrain(t *testing.T) {
	s, ts := newTestServer(t)
	if code, _, b := post(t, context.Background(), ts.URL+"/sdapi/v1/txt2img", `{"steps": 1, "width": 64, "height": 64}`); code != 200 {
		t.Fatalf("txt2img: %d %s", code, b)
	}
	m := metricsText(t, ts.URL)
	for _, want := range []string{"smallsd_queue_length 0", "smallsd_generation_running 0", "smallsd_generation_seconds_count 1",
		`smallsd_http_requests_total{code="200",route="POST /sdapi/v1/txt2img"} 1`, "smallsd_images_total 1", "go_goroutines"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	s.Drain()
	if code, _ := get(t, ts.URL+"/healthz"); code != 503 {
		t.Errorf("healthz while draining: %d", code)
	}
	code, h, _ := post(t, context.Background(), ts.URL+"/sdapi/v1/txt2img", `{"steps": 1}`)
	if code != 503 || h.Get("Retry-After") == "" {
		t.Errorf("txt2img while draining: %d, Retry-After %q", code, h.Get("Retry-After"))
	}
}
