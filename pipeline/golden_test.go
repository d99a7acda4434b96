package pipeline

import (
	"context"
	"encoding/json"
	"image"
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
// golden.Check applies it): about 10× the largest error measured over the tiny-sd cases (3.2e-6
// relative: 5.5e-5 absolute on latents of max|ref| 17; the reference is fp32 torch).
const e2eLatentTol = 3e-5

// checkImageU8 compares 8-bit images with the reference (HWC, RGB) and requires every value to
// be within one level (rounding of the last bit). It logs the counts.
func checkImageU8(t testing.TB, label string, img *image.NRGBA, ref *golden.Tensor) {
	t.Helper()
	h, w := ref.Shape[0], ref.Shape[1]
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("%s: image is %dx%d, want %dx%d", label, b.Dx(), b.Dy(), w, h)
	}
	var exact, one, off int
	maxd := 0.0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				got := float64(img.Pix[y*img.Stride+4*x+c])
				d := math.Abs(got - ref.Data[(y*w+x)*3+c])
				maxd = math.Max(maxd, d)
				switch {
				case d == 0:
					exact++
				case d <= 1:
					one++
				default:
					off++
				}
			}
			if a := img.Pix[y*img.Stride+4*x+3]; a != 255 {
				t.Fatalf("%s: alpha %d at (%d,%d)", label, a, x, y)
			}
		}
	}
	total := exact + one + off
	t.Logf("%s: %d values: %d exact, %d within 1 level, %d further (max difference %v)", label, total, exact, one, off, maxd)
	if off > 0 {
		t.Errorf("%s: %d of %d values more than 1 level off (max %v), want none", label, off, total, maxd)
	}
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
		worst = math.Max(worst, golden.Check(t, name+".latents_steps["+itoa(i)+"]", got[i+1], s, e2eLatentTol))
	}
	t.Logf("%s: largest latent error over %d steps %.3g", name, len(wantTS), worst)
	if len(res.Images) != 1 {
		t.Fatalf("%d images, want 1", len(res.Images))
	}
	checkImageU8(t, name+".image_u8", res.Images[0], ref.Must(t, name+".image_u8"))
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
