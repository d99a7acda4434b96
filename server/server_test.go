package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/draw"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/pipeline"
	"github.com/smallsd/smallsd/pipeline/pngmeta"
	"github.com/smallsd/smallsd/scheduler"
)

var (
	tinyOnce sync.Once
	tinyPipe *pipeline.Pipeline
	tinyErr  error
)

// tinyPipeline is testdata/tiny-sd, loaded once for the package's tests.
func tinyPipeline(t testing.TB) *pipeline.Pipeline {
	t.Helper()
	tinyOnce.Do(func() { tinyPipe, tinyErr = pipeline.Load(golden.Path("tiny-sd")) })
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyPipe
}

// testLogger logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// newTestServer serves tiny-sd on 127.0.0.1.
func newTestServer(t testing.TB, opts ...Option) (*Server, *httptest.Server) {
	t.Helper()
	s := New(tinyPipeline(t), append([]Option{WithLogger(testLogger(t))}, opts...)...)
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts
}

// post sends a JSON body and returns the status, headers and body.
func post(t testing.TB, ctx context.Context, url, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func get(t testing.TB, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type txt2imgResult struct {
	Images     []string       `json:"images"`
	Parameters map[string]any `json:"parameters"`
	Info       string         `json:"info"`
}

func decodeTxt2img(t testing.TB, body []byte) (txt2imgResult, txt2imgInfo) {
	t.Helper()
	var r txt2imgResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("response %.200s: %v", body, err)
	}
	var info txt2imgInfo
	if err := json.Unmarshal([]byte(r.Info), &info); err != nil {
		t.Fatalf("info %q: %v", r.Info, err)
	}
	return r, info
}

// decodePNG decodes a base64 PNG and returns the image and its parameters chunk.
func decodePNG(t testing.TB, b64 string) (*image.NRGBA, string) {
	t.Helper()
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	texts, err := pngmeta.ReadText(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	params, _ := pngmeta.Lookup(texts, pngmeta.ParametersKeyword)
	n := image.NewNRGBA(img.Bounds())
	draw.Draw(n, n.Bounds(), img, img.Bounds().Min, draw.Src)
	return n, params
}

// e2eCase is one whole-pipeline reference run of testdata/cases.json.
type e2eCase struct {
	Scheduler      string  `json:"scheduler"`
	Prompt         string  `json:"prompt"`
	NegativePrompt *string `json:"negative_prompt"`
	Steps          int     `json:"steps"`
	Guidance       float64 `json:"guidance"`
	Seed           int64   `json:"seed"`
	Height, Width  int
}

func loadCase(t *testing.T, name string) e2eCase {
	data, err := os.ReadFile(golden.Path("cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases struct {
		Meta map[string]json.RawMessage `json:"meta"`
	}
	var c e2eCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(cases.Meta[name], &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// The reference cases through POST /sdapi/v1/txt2img give the pixels pipeline.Generate gives,
// and the parameters chunk, infotexts and info agree with the request.
func TestTxt2imgMatchesPipeline(t *testing.T) {
	_, ts := newTestServer(t)
	p := tinyPipeline(t)
	sampler := map[string]string{"PNDMScheduler": "PLMS", "DDIMScheduler": "DDIM"}
	for _, name := range []string{"e2e.pndm", "e2e.ddim", "e2e.rect_nocfg"} {
		t.Run(name, func(t *testing.T) {
			c := loadCase(t, name)
			neg := ""
			if c.NegativePrompt != nil {
				neg = *c.NegativePrompt
			}
			body, _ := json.Marshal(map[string]any{"prompt": c.Prompt, "negative_prompt": neg, "steps": c.Steps,
				"cfg_scale": c.Guidance, "seed": c.Seed, "width": c.Width, "height": c.Height,
				"sampler_name": sampler[c.Scheduler], "some_unknown_field": []int{1}})
			code, _, b := post(t, context.Background(), ts.URL+"/sdapi/v1/txt2img", string(body))
			if code != 200 {
				t.Fatalf("status %d: %s", code, b)
			}
			r, info := decodeTxt2img(t, b)
			if len(r.Images) != 1 {
				t.Fatalf("%d images, want 1", len(r.Images))
			}
			img, chunk := decodePNG(t, r.Images[0])

			sched, _ := pipeline.SchedulerForClass(c.Scheduler, scheduler.Config{})
			want, err := p.Generate(context.Background(), pipeline.Request{Prompt: c.Prompt, NegativePrompt: neg,
				Width: c.Width, Height: c.Height, Steps: c.Steps, GuidanceScale: c.Guidance, Seed: c.Seed, Scheduler: sched})
			if err != nil {
				t.Fatal(err)
			}
			diff := 0
			for i := range img.Pix {
				if img.Pix[i] != want.Images[0].Pix[i] {
					diff++
				}
			}
			t.Logf("%s: %d of %d PNG bytes differ from pipeline.Generate's image", name, diff, len(img.Pix))
			if diff != 0 || img.Bounds() != want.Images[0].Bounds() {
				t.Errorf("the image differs from pipeline.Generate's")
			}
			if wantText := want.Parameters(0).String(); chunk != wantText || info.Infotexts[0] != wantText {
				t.Errorf("parameters chunk %q, infotext %q; want %q", chunk, info.Infotexts[0], wantText)
			}
			pp, err := pngmeta.ParseParameters(chunk)
			if err != nil {
				t.Fatal(err)
			}
			if pp.Prompt != c.Prompt || pp.NegativePrompt != neg || pp.Steps != c.Steps || pp.CFGScale != c.Guidance ||
				pp.Seed != c.Seed || pp.Width != c.Width || pp.Height != c.Height || pp.Model != "tiny-sd" {
				t.Errorf("parameters %+v do not match the request %+v", pp, c)
			}
			if info.Seed != c.Seed || len(info.AllSeeds) != 1 || info.AllSeeds[0] != c.Seed || info.Steps != c.Steps ||
				info.CFGScale != c.Guidance || info.Width != c.Width || info.Height != c.Height ||
				info.SamplerName != sampler[c.Scheduler] || info.Prompt != c.Prompt || info.SDModelName != "tiny-sd" {
				t.Errorf("info %+v does not match the request", info)
			}
			if r.Parameters["prompt"] != c.Prompt || r.Parameters["steps"] != float64(c.Steps) {
				t.Errorf("parameters %v do not echo the request", r.Parameters)
			}
		})
	}
}

// batch_size, n_iter, a random seed and the scheduler names.
func TestTxt2imgBatch(t *testing.T) {
	_, ts := newTestServer(t)
	code, _, b := post(t, context.Background(), ts.URL+"/sdapi/v1/txt2img",
		`{"prompt": "a cat", "steps": 2, "width": 64, "height": 64, "batch_size": 2, "n_iter": 2, "seed": -1, "sampler_name": "euler_a"}`)
	if code != 200 {
		t.Fatalf("status %d: %s", code, b)
	}
	r, info := decodeTxt2img(t, b)
	if len(r.Images) != 4 || len(info.AllSeeds) != 4 || len(info.Infotexts) != 4 {
		t.Fatalf("%d images, %d seeds, %d infotexts; want 4", len(r.Images), len(info.AllSeeds), len(info.Infotexts))
	}
	s := info.Seed
	if s < 0 || info.AllSeeds[0] != s || info.AllSeeds[1] != s || info.AllSeeds[2] != s+1 || info.AllSeeds[3] != s+1 {
		t.Errorf("seed %d, all_seeds %v; want the iteration's seed for each image of its batch", s, info.AllSeeds)
	}
	if info.SamplerName != "Euler a" || info.BatchSize != 2 {
		t.Errorf("sampler %q batch_size %d", info.SamplerName, info.BatchSize)
	}
	for i, im := range r.Images {
		_, chunk := decodePNG(t, im)
		pp, err := pngmeta.ParseParameters(chunk)
		if err != nil {
			t.Fatal(err)
		}
		if pp.Seed != info.AllSeeds[i] || len(pp.Extra) != 2 || pp.Extra[1].Value != []string{"0", "1"}[i%2] {
			t.Errorf("image %d: parameters %+v", i, pp)
		}
	}
	// send_images false: no images, the info still there.
	code, _, b = post(t, context.Background(), ts.URL+"/sdapi/v1/txt2img", `{"steps": 1, "width": 64, "height": 64, "send_images": false, "seed": 3}`)
	if r, info := decodeTxt2img(t, b); code != 200 || len(r.Images) != 0 || info.Seed != 3 {
		t.Errorf("send_images false: status %d, %d images, seed %d", code, len(r.Images), info.Seed)
	}
}

// Every bad request gets its status and a JSON error naming the field.
func TestErrors(t *testing.T) {
	_, ts := newTestServer(t, WithMaxBodyBytes(4096))
	cases := []struct {
		body  string
		code  int
		field string
	}{
		{`{"prompt": "a`, 422, "body"},
		{``, 422, "body"},
		{`[1, 2]`, 422, "body"},
		{`{"prompt": "a"} {"x": 1}`, 422, "body"},
		{`{"steps": "ten"}`, 422, "steps"},
		{`{"cfg_scale": "high"}`, 422, "cfg_scale"},
		{`{"seed": 1.5}`, 422, "seed"},
		{`{"prompt": 7}`, 422, "prompt"},
		{`{"steps": 0}`, 422, "steps"},
		{`{"steps": 100000}`, 422, "steps"},
		{`{"width": 100, "steps": 1}`, 422, "width"},
		{`{"height": -8}`, 422, "height"},
		{`{"width": 100000}`, 422, "width"},
		{`{"batch_size": 0}`, 422, "batch_size"},
		{`{"n_iter": 1000}`, 422, "n_iter"},
		{`{"sampler_name": "Heun"}`, 422, "sampler_name"},
		{`{"sampler_index": "Heun"}`, 422, "sampler_index"},
		{`{"sampler_name": "Euler", "scheduler": "Karras"}`, 422, "scheduler"},
		{`{"scheduler": "Exponential"}`, 422, "scheduler"},
		{`{"enable_hr": true}`, 422, "enable_hr"},
		{`{"restore_faces": true}`, 422, "restore_faces"},
		{`{"subseed_strength": 0.5}`, 422, "subseed_strength"},
		{`{"prompt": "` + strings.Repeat("x", 5000) + `"}`, 413, ""},
	}
	for _, path := range []string{"/sdapi/v1/txt2img", "/api/generate"} {
		for _, c := range cases {
			code, h, b := post(t, context.Background(), ts.URL+path, c.body)
			var e struct {
				Error string `json:"error"`
				Field string `json:"field"`
			}
			if err := json.Unmarshal(b, &e); err != nil || h.Get("Content-Type") != "application/json" {
				t.Errorf("%s %.40s: body %.200s is not a JSON error: %v", path, c.body, b, err)
			}
			if code != c.code || e.Field != c.field {
				t.Errorf("%s %.40s: status %d field %q (%s), want %d %q", path, c.body, code, e.Field, e.Error, c.code, c.field)
			}
		}
	}
	t.Logf("e.g. %s", func() string {
		_, _, b := post(t, context.Background(), ts.URL+"/sdapi/v1/txt2img", `{"width": 100}`)
		return string(b)
	}())
	if code, b := get(t, ts.URL+"/sdapi/v1/nothing"); code != 404 || !strings.Contains(string(b), "Not Found") {
		t.Errorf("unknown API route: %d %s", code, b)
	}
	if code, _ := get(t, ts.URL+"/sdapi/v1/txt2img"); code != 404 {
		t.Errorf("GET txt2img: %d, want 404", code)
	}
}

// A handler that panics gives 500 with a JSON error, and the server goes on.
func TestPanicRecovered(t *testing.T) {
	s, ts := newTestServer(t)
	s.mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	code, b := get(t, ts.URL+"/panic")
	if code != 500 || !strings.Contains(string(b), "internal server error") {
		t.Errorf("panic: %d %s", code, b)
	}
	if code, _ := get(t, ts.URL+"/healthz"); code != 200 {
		t.Errorf("healthz after a panic: %d", code)
	}
}

func TestInfoEndpoints(t *testing.T) {
	_, ts := newTestServer(t)
	code, b := get(t, ts.URL+"/sdapi/v1/samplers")
	var sm []struct {
		Name    string   `json:"name"`
		Aliases []string `json:"aliases"`
	}
	if err := json.Unmarshal(b, &sm); code != 200 || err != nil || len(sm) != 7 {
		t.Errorf("samplers: %d %s", code, b)
	}
	if code, b := get(t, ts.URL+"/sdapi/v1/schedulers"); code != 200 || !strings.Contains(string(b), `"Karras"`) {
		t.Errorf("schedulers: %d %s", code, b)
	}
	for body, want := range map[string]int{`{"sd_model_checkpoint": "tiny-sd", "CLIP_stop_at_last_layers": 1}`: 200,
		`{"sd_model_checkpoint": "sd-v1-5"}`: 422, `[]`: 422} {
		if code, _, b := post(t, context.Background(), ts.URL+"/sdapi/v1/options", body); code != want {
			t.Errorf("POST options %s: %d %s, want %d", body, code, b, want)
		}
	}
	for _, path := range []string{"/sdapi/v1/sd-models", "/sdapi/v1/options", "/api/config", "/healthz"} {
		if code, b := get(t, ts.URL+path); code != 200 || !strings.Contains(string(b), "tiny-sd") {
			t.Errorf("%s: %d %s", path, code, b)
		}
	}
	code, b = get(t, ts.URL+"/")
	if code != 200 || !bytes.Contains(b, []byte("<title>smallsd</title>")) {
		t.Errorf("page: %d %.100s", code, b)
	}
	code, b = get(t, ts.URL+"/sdapi/v1/progress")
	if code != 200 || !strings.Contains(string(b), `"current_image":null`) {
		t.Errorf("idle progress: %d %s", code, b)
	}
}

// The page's stream: progress events with previews, then the images.
func TestStream(t *testing.T) {
	_, ts := newTestServer(t)
	resp, err := http.Post(ts.URL+"/api/generate", "application/json",
		strings.NewReader(`{"prompt": "a apple, 4k", "steps": 4, "seed": 42, "width": 128, "height": 128, "sampler_name": "PLMS"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, ct)
	}
	b, _ := io.ReadAll(resp.Body)
	var kinds []string
	var done doneEvent
	var last progressEvent
	previews := 0
	for _, block := range strings.Split(strings.TrimSpace(string(b)), "\n\n") {
		lines := strings.SplitN(block, "\n", 2)
		kind, data := strings.TrimPrefix(lines[0], "event: "), strings.TrimPrefix(lines[1], "data: ")
		kinds = append(kinds, kind)
		switch kind {
		case "progress":
			if err := json.Unmarshal([]byte(data), &last); err != nil {
				t.Errorf("progress event %.200s: %v", data, err)
			}
			if strings.HasPrefix(last.Preview, "data:image/png;base64,") {
				previews++
			}
		case "done":
			if err := json.Unmarshal([]byte(data), &done); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("events: %v, %d with a preview", kinds, previews)
	if previews == 0 {
		t.Error("no preview")
	}
	if kinds[0] != "progress" || kinds[len(kinds)-1] != "done" || last.Step != last.Total || last.Total != 5 {
		t.Errorf("events %v, last progress %+v", kinds, last)
	}
	if len(done.Images) != 1 || done.Images[0].Seed != 42 || !strings.Contains(done.Images[0].Infotext, "Seed: 42") {
		t.Fatalf("done: %+v", done.Info)
	}
	img, chunk := decodePNG(t, done.Images[0].PNG)
	if img.Bounds().Dx() != 128 || chunk != done.Images[0].Infotext {
		t.Errorf("image %v, chunk %q", img.Bounds(), chunk)
	}
}

// httptestRecorder serves one POST with s and returns the body.
func httptestRecorder(s *Server, path, body string) []byte {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", path, strings.NewReader(body)))
	return rec.Body.Bytes()
}

// A panic inside a generation (here: a zero Pipeline) is an error, logged, and the job leaves
// the queue; the stream answers with an error event.
func TestGenerationPanic(t *testing.T) {
	s, _ := newTestServer(t)
	gp, err := s.check(txt2imgRequest{Steps: 1, Width: 64, Height: 64, BatchSize: 1, NIter: 1}, pipeline.Request{})
	if err != nil {
		t.Fatal(err)
	}
	s.p = &pipeline.Pipeline{}
	_, err = s.runJob(context.Background(), gp, nil)
	if err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Errorf("runJob: %v, want an internal error", err)
	}
	if r, w := s.q.lengths(); r != 0 || w != 0 {
		t.Errorf("after the panic %d running, %d waiting", r, w)
	}
}
