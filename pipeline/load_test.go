package pipeline

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/hub"
	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/scheduler"
)

// copyModel copies testdata/tiny-sd to a temporary folder, leaving out the components named.
func copyModel(t *testing.T, skip ...string) string {
	t.Helper()
	src := golden.Path("tiny-sd")
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		for _, s := range skip {
			if rel == s || strings.HasPrefix(rel, s+string(filepath.Separator)) {
				return nil
			}
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestLoadErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o644)
	cases := map[string]struct{ dir, want string }{
		"empty folder":      {t.TempDir(), "model_index.json"},
		"missing folder":    {filepath.Join(t.TempDir(), "nope"), "nope"},
		"not a folder":      {file, "neither a PyTorch checkpoint"}, // a file is read as a single-file checkpoint
		"missing unet":      {copyModel(t, "unet"), "unet"},
		"missing vae":       {copyModel(t, "vae"), "vae"},
		"missing tokenizer": {copyModel(t, "tokenizer"), "tokenizer"},
		"missing scheduler": {copyModel(t, "scheduler"), "scheduler"},
		"missing text":      {copyModel(t, "text_encoder"), "text_encoder"},
		"no unet weights":   {copyModel(t, filepath.Join("unet", "diffusion_pytorch_model.safetensors")), "unet"},
	}
	for name, c := range cases {
		p, err := Load(c.dir)
		if err == nil {
			p.Close()
			t.Errorf("%s: no error", name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not name %q", name, err, c.want)
		}
		t.Logf("%s: %v", name, err)
	}

	// An unknown scheduler class is an error unless WithScheduler picks one.
	dir := copyModel(t)
	idx := filepath.Join(dir, "model_index.json")
	data, _ := os.ReadFile(idx)
	os.WriteFile(idx, bytes.Replace(data, []byte("PNDMScheduler"), []byte("UniPCMultistepScheduler"), 1), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "UniPCMultistepScheduler") {
		t.Errorf("unknown scheduler class: %v", err)
	}
	p, err := Load(dir, WithScheduler("ddim"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.DefaultScheduler() != "ddim" {
		t.Errorf("DefaultScheduler %q, want ddim", p.DefaultScheduler())
	}
	if _, err := Load(dir, WithScheduler("nope")); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("WithScheduler(nope): %v", err)
	}
}

// A model_index.json that lists a safety checker and feature extractor whose folders were not
// downloaded (as package hub leaves them) loads.
func TestLoadWithoutSafetyChecker(t *testing.T) {
	dir := copyModel(t)
	listSafetyChecker(t, dir)
	p, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Generate(context.Background(), Request{Prompt: "x", Steps: 1, Width: 64, Height: 64}); err != nil {
		t.Fatal(err)
	}
}

// listSafetyChecker edits dir/model_index.json to list a safety checker and feature extractor,
// as the real small-sd's does.
func listSafetyChecker(t *testing.T, dir string) {
	t.Helper()
	idx := filepath.Join(dir, "model_index.json")
	data, _ := os.ReadFile(idx)
	data = bytes.Replace(data, []byte(`"feature_extractor": [
    null,
    null
  ]`), []byte(`"feature_extractor": ["transformers", "CLIPImageProcessor"]`), 1)
	data = bytes.Replace(data, []byte(`"safety_checker": [
    null,
    null
  ]`), []byte(`"safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"]`), 1)
	if !bytes.Contains(data, []byte("StableDiffusionSafetyChecker")) || !bytes.Contains(data, []byte("CLIPImageProcessor")) {
		t.Fatal("could not edit model_index.json")
	}
	if err := os.WriteFile(idx, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The fp16 variant of the text encoder is used where present (the other components fall back to
// their float32 weights) and gives nearly the reference image.
func TestLoadFP16Variant(t *testing.T) {
	p, err := Load(golden.Path("tiny-sd"), WithVariant("fp16"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := loadCase(t, "e2e.pndm")
	req := c.request(t)
	var final []float32
	req.Progress = func(pr Progress) { final = pr.Latents }
	if _, err := p.Generate(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	ref := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors")).Must(t, "e2e.pndm.latents_steps")
	per := len(final)
	maxErr, _ := golden.MaxAbsDiff(final, ref.Data[len(ref.Data)-per:])
	t.Logf("fp16 text encoder: final latents differ from the float32 reference by up to %.3g", maxErr)
	if maxErr == 0 {
		t.Error("fp16 variant gave exactly the float32 result: was it loaded?")
	}
	if maxErr > 0.05 {
		t.Errorf("fp16 variant: final latents off by %.3g (> 0.05)", maxErr)
	}
}

func TestSchedulerForClass(t *testing.T) {
	karras := true
	for class, want := range map[string]string{"PNDMScheduler": "pndm", "DDIMScheduler": "ddim",
		"EulerDiscreteScheduler": "euler", "EulerAncestralDiscreteScheduler": "euler_a",
		"LMSDiscreteScheduler": "lms", "DPMSolverMultistepScheduler": "dpmpp_2m"} {
		if got, err := SchedulerForClass(class, scheduler.Config{}); got != want || err != nil {
			t.Errorf("%s → %q, %v; want %q", class, got, err, want)
		}
	}
	if got, _ := SchedulerForClass("DPMSolverMultistepScheduler", scheduler.Config{UseKarrasSigmas: &karras}); got != "dpmpp_2m_karras" {
		t.Errorf("Karras → %q", got)
	}
	if SamplerName("euler_a") != "Euler a" || SamplerName("pndm") != "PNDM" || SamplerName("x") != "x" {
		t.Error("SamplerName")
	}
}

// fakeHubCache makes a Hub cache holding testdata/tiny-sd as the snapshot of
// OFA-Sys/small-stable-diffusion-v0 at main, laid out as huggingface_hub lays it out.
func fakeHubCache(t *testing.T) string {
	t.Helper()
	cache := t.TempDir()
	const commit = "0123456789abcdef0123456789abcdef01234567"
	repo := filepath.Join(cache, "models--OFA-Sys--small-stable-diffusion-v0")
	if err := os.MkdirAll(filepath.Join(repo, "refs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(commit), 0o644); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(repo, "snapshots")
	os.MkdirAll(snap, 0o755)
	if err := os.Rename(copyModel(t), filepath.Join(snap, commit)); err != nil {
		t.Fatal(err)
	}
	return cache
}

// A Hub repo id loads through package hub (here from a complete cache, offline).
func TestLoadRepoID(t *testing.T) {
	cache := fakeHubCache(t)
	p, err := Load(DefaultModel, WithHubOptions(hub.WithCacheDir(cache), hub.WithOffline(true)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Name() != "small-stable-diffusion-v0" {
		t.Errorf("Name %q, want the repo's name", p.Name())
	}
	if _, err := p.Generate(context.Background(), Request{Prompt: "x", Steps: 1, Width: 64, Height: 64}); err != nil {
		t.Fatal(err)
	}
	// A repo missing from the cache is an error naming it.
	_, err = Load("nobody/nothing", WithHubOptions(hub.WithCacheDir(cache), hub.WithOffline(true)))
	if err == nil || !strings.Contains(err.Error(), "nobody/nothing") {
		t.Errorf("uncached repo: %v", err)
	}
	t.Logf("uncached repo: %v", err)
}
