package pipeline

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"sync"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// e2eCase is one whole-pipeline reference run, as testdata/cases.json's "meta" describes it.
type e2eCase struct {
	Name           string  `json:"name"`
	Scheduler      string  `json:"scheduler"`
	Prompt         string  `json:"prompt"`
	NegativePrompt *string `json:"negative_prompt"`
	Steps          int     `json:"steps"`
	Guidance       float64 `json:"guidance"`
	Seed           int64   `json:"seed"`
	Height, Width  int
}

func loadCase(t testing.TB, name string) e2eCase {
	t.Helper()
	data, err := os.ReadFile(golden.Path("cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases struct {
		Meta map[string]json.RawMessage `json:"meta"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	var c e2eCase
	if err := json.Unmarshal(cases.Meta[name], &c); err != nil {
		t.Fatalf("cases.json meta %s: %v", name, err)
	}
	return c
}

// request turns a case into a Request; the scheduler class is mapped as Load maps a model's.
func (c e2eCase) request(t testing.TB) Request {
	name, err := SchedulerForClass(c.Scheduler, testPipeline(t).sched)
	if err != nil {
		t.Fatal(err)
	}
	r := Request{Prompt: c.Prompt, Width: c.Width, Height: c.Height, Steps: c.Steps,
		GuidanceScale: c.Guidance, Seed: c.Seed, Scheduler: name}
	if c.NegativePrompt != nil {
		r.NegativePrompt = *c.NegativePrompt
	}
	return r
}

var (
	tinyOnce sync.Once
	tinyPipe *Pipeline
	tinyErr  error
)

// testPipeline is testdata/tiny-sd, loaded once for the package's tests.
func testPipeline(t testing.TB) *Pipeline {
	t.Helper()
	tinyOnce.Do(func() { tinyPipe, tinyErr = Load(golden.Path("tiny-sd")) })
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyPipe
}

// e2eLatentTol is the tolerance of the end-to-end latents (times max(1, max|ref|), as
// golden.Check applies it): about 10× the largest error measured over the tiny-sd cases with
// guidance, on the AVX-512 and AVX2 paths (3.2e-6 relative: 5.4e-5 absolute on latents of
// max|ref| 17; the reference is fp32 torch). Cases that measure much less have their own
// (e2eCaseTols), so that a 20× regression in them cannot pass.
const e2eLatentTol = 3e-5

// e2eCaseTols holds the latent tolerances of cases far below e2eLatentTol.
var e2eCaseTols = map[string]float64{
	"e2e.rect_nocfg": 5e-6, // 4.4e-7: no guidance, so no amplification of the UNet's error
}

// latentTol is a case's latent tolerance.
func latentTol(name string) float64 {
	if tol, ok := e2eCaseTols[name]; ok {
		return tol
	}
	return e2eLatentTol
}

// runCase generates a case with tiny-sd (or p) and checks initial latents, every step's latents,
// the timesteps and the image.
func runCase(t *testing.T, p *Pipeline, name string) *Result {
	c := loadCase(t, name)
	ref := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	init := ref.Must(t, name+".latents_init")
	steps := ref.Must(t, name+".latents_steps")
	per := len(init.Data)
	var got [][]float32
	req := c.request(t)
	req.Progress = func(pr Progress) {
		if pr.Step != len(got) {
			t.Errorf("progress step %d, want %d", pr.Step, len(got))
		}
		got = append(got, pr.Latents)
	}
	res, err := p.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	wantTS := ref.Must(t, name+".timesteps").Ints()
	if len(res.Timesteps) != len(wantTS) {
		t.Fatalf("timesteps %v, want %v", res.Timesteps, wantTS)
	}
	for i, v := range wantTS {
		if res.Timesteps[i] != float64(v) {
			t.Fatalf("timesteps %v, want %v", res.Timesteps, wantTS)
		}
	}
	if len(got) != len(wantTS)+1 {
		t.Fatalf("%d progress calls, want %d", len(got), len(wantTS)+1)
	}
	golden.Check(t, name+".latents_init", got[0], init, 1e-6)
	worst := 0.0
	for i := range wantTS {
		s := &golden.Tensor{Name: steps.Name, Shape: init.Shape, Data: steps.Data[i*per : (i+1)*per]}
		worst = math.Max(worst, golden.Check(t, name+".latents_steps["+itoa(i)+"]", got[i+1], s, latentTol(name)))
	}
	t.Logf("%s: largest latent error over %d steps %.3g", name, len(wantTS), worst)
	if len(res.Images) != 1 {
		t.Fatalf("%d images, want 1", len(res.Images))
	}
	golden.CheckImageU8(t, name+".image_u8", res.Images[0], ref.Must(t, name+".image_u8"))
	t.Logf("%s: timings text %v, denoise %v (%d steps), decode %v, total %v", name,
		res.Timings.Text, res.Timings.Denoise, len(res.Timings.Steps), res.Timings.Decode, res.Timings.Total)
	return res
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestGoldenPNDM(t *testing.T)      { runCase(t, testPipeline(t), "e2e.pndm") }
func TestGoldenDDIM(t *testing.T)      { runCase(t, testPipeline(t), "e2e.ddim") }
func TestGoldenRectNoCFG(t *testing.T) { runCase(t, testPipeline(t), "e2e.rect_nocfg") }

// The same weights as PyTorch .bin pickles give the same image.
func TestGoldenBin(t *testing.T) {
	p, err := Load(golden.Path("tiny-sd-bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	runCase(t, p, "e2e.pndm")
}
