package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/pipeline"
	"github.com/smallsd/smallsd/pipeline/pngmeta"
	"github.com/smallsd/smallsd/scheduler"
)

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

// args are the command-line flags that run a reference case.
func (c e2eCase) args(t *testing.T, model, out string) []string {
	sched, err := pipeline.SchedulerForClass(c.Scheduler, scheduler.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a := []string{"-model", model, "-prompt", c.Prompt, "-steps", strconv.Itoa(c.Steps),
		"-guidance", strconv.FormatFloat(c.Guidance, 'g', -1, 64), "-seed", strconv.FormatInt(c.Seed, 10),
		"-width", strconv.Itoa(c.Width), "-height", strconv.Itoa(c.Height), "-scheduler", sched, "-out", out}
	if c.NegativePrompt != nil {
		a = append(a, "-negative", *c.NegativePrompt)
	}
	return a
}

func readPNG(t *testing.T, path string) (image.Image, pngmeta.Parameters) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p, err := pngmeta.ReadParameters(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return img, p
}

func TestRunGolden(t *testing.T) {
	ref := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	for _, tc := range []struct{ name, model string }{
		{"e2e.pndm", "tiny-sd"}, {"e2e.ddim", "tiny-sd"}, {"e2e.rect_nocfg", "tiny-sd"}, {"e2e.pndm", "tiny-sd-bin"},
	} {
		t.Run(tc.name+"/"+tc.model, func(t *testing.T) {
			c := loadCase(t, tc.name)
			out := filepath.Join(t.TempDir(), "img.png")
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), c.args(t, golden.Path(tc.model), out), &stdout, &stderr); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			t.Logf("stdout:\n%s", stdout.String())
			if !strings.Contains(stdout.String(), "seed: "+strconv.FormatInt(c.Seed, 10)) {
				t.Errorf("stdout does not report the seed:\n%s", stdout.String())
			}
			// stderr is not a terminal: plain lines, the last step reported.
			if !strings.Contains(stderr.String(), "step "+strconv.Itoa(c.Steps+1)+"/") && !strings.Contains(stderr.String(), "step "+strconv.Itoa(c.Steps)+"/") {
				t.Errorf("no step lines on stderr:\n%s", stderr.String())
			}
			if strings.Contains(stderr.String(), "\r") {
				t.Error("carriage returns in progress written to a non-terminal")
			}
			img, p := readPNG(t, out)
			golden.CheckImageU8(t, tc.name, img, ref.Must(t, tc.name+".image_u8"))
			want := pngmeta.Parameters{Prompt: c.Prompt, Steps: c.Steps, CFGScale: c.Guidance, Seed: c.Seed,
				Width: c.Width, Height: c.Height, Model: tc.model,
				Sampler: map[string]string{"PNDMScheduler": "PNDM", "DDIMScheduler": "DDIM"}[c.Scheduler]}
			if c.NegativePrompt != nil {
				want.NegativePrompt = *c.NegativePrompt
			}
			if p.String() != want.String() {
				t.Errorf("parameters chunk:\n%s\nwant\n%s", p, want)
			}
			t.Logf("parameters chunk:\n%s", p)
		})
	}
}

func TestRunNumberedAndFP16(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"-model", golden.Path("tiny-sd"), "-prompt", "two cats", "-n", "2", "-steps", "2",
		"-width", "64", "-height", "64", "-fp16", "-seed", "5", "-out", filepath.Join(dir, "cat.png")}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		_, p := readPNG(t, filepath.Join(dir, "cat-"+strconv.Itoa(i)+".png"))
		want := []pngmeta.Field{{Key: "Batch size", Value: "2"}, {Key: "Batch pos", Value: strconv.Itoa(i - 1)}}
		if p.Seed != 5 || p.Prompt != "two cats" || len(p.Extra) != 2 || p.Extra[0] != want[0] || p.Extra[1] != want[1] {
			t.Errorf("image %d parameters %+v", i, p)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "cat.png")); err == nil {
		t.Error("un-numbered output written with -n 2")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d files in the output folder, want 2 (no temporary files left)", len(entries))
	}
}

// TestRunBF16 makes an image with -precision bf16.
func TestRunBF16(t *testing.T) {
	out := filepath.Join(t.TempDir(), "b.png")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-model", golden.Path("tiny-sd"), "-prompt", "x", "-steps", "2",
		"-width", "64", "-height", "64", "-seed", "3", "-precision", "bf16", "-out", out}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if _, p := readPNG(t, out); p.Seed != 3 {
		t.Errorf("PNG says seed %d, want 3", p.Seed)
	}
}

func TestRunRandomSeed(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.png")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-model", golden.Path("tiny-sd"), "-prompt", "x", "-steps", "1",
		"-width", "64", "-height", "64", "-out", out}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(stdout.String(), "\n", 2)[0]
	seed, err := strconv.ParseInt(strings.TrimPrefix(first, "seed: "), 10, 64)
	if err != nil || seed < 0 {
		t.Fatalf("first line %q does not report a seed", first)
	}
	if _, p := readPNG(t, out); p.Seed != seed {
		t.Errorf("PNG says seed %d, stdout %d", p.Seed, seed)
	}
}

func TestRunErrors(t *testing.T) {
	model := golden.Path("tiny-sd")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-model", model}, "-prompt"},
		{[]string{"-model", model, "-prompt", "x", "-width", "130"}, "-width"},
		{[]string{"-model", model, "-prompt", "x", "-height", "-8"}, "-height"},
		{[]string{"-model", model, "-prompt", "x", "-steps", "0"}, "-steps"},
		{[]string{"-model", model, "-prompt", "x", "-n", "0"}, "-n"},
		{[]string{"-model", model, "-prompt", "x", "-scheduler", "heun"}, "Scheduler"},
		{[]string{"-model", model, "-prompt", "x", "stray"}, "stray"},
		{[]string{"-model", model, "-prompt", "x", "-precision", "fp8"}, "-precision"},
		{[]string{"-model", model, "-prompt", "x", "-bogus"}, "bogus"},
		{[]string{"-model", t.TempDir(), "-prompt", "x"}, "model_index.json"},
		{[]string{"-model", model, "-prompt", "x", "-steps", "1", "-width", "64", "-height", "64",
			"-out", filepath.Join(t.TempDir(), "no", "such", "dir", "x.png")}, "x.png"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), c.args, &stdout, &stderr)
		if err == nil {
			t.Errorf("%q: no error", c.args)
			continue
		}
		if msg := err.Error() + stderr.String(); !strings.Contains(msg, c.want) {
			t.Errorf("%q: error %q does not mention %q", c.args, err, c.want)
		}
		t.Logf("%v", err)
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(t.TempDir(), "c.png")
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"-model", golden.Path("tiny-sd"), "-prompt", "x", "-out", out}, &stdout, &stderr)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("run with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("an image was written after cancellation")
	}
}

// -model takes a Hub repo id; here the default one, from a complete offline cache holding
// testdata/tiny-sd as huggingface_hub lays it out.
func TestRunRepoID(t *testing.T) {
	cache := t.TempDir()
	const commit = "0123456789abcdef0123456789abcdef01234567"
	repo := filepath.Join(cache, "models--OFA-Sys--small-stable-diffusion-v0")
	snap := filepath.Join(repo, "snapshots", commit)
	src := golden.Path("tiny-sd")
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(snap, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(snap, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(repo, "refs"), 0o755)
	if err := os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(commit), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_HUB_OFFLINE", "1")
	out := filepath.Join(t.TempDir(), "hub.png")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-prompt", "x", "-steps", "1", "-width", "64", "-height", "64",
		"-seed", "9", "-out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if _, p := readPNG(t, out); p.Model != "small-stable-diffusion-v0" {
		t.Errorf("Model %q in the parameters, want small-stable-diffusion-v0", p.Model)
	}
	if !strings.Contains(stderr.String(), pipeline.DefaultModel) {
		t.Errorf("stderr does not name the model:\n%s", stderr.String())
	}
}
