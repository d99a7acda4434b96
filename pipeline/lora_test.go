package pipeline

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/lora"
)

var (
	kohyaLoRA     = golden.Path("lora", "lora-kohya.safetensors")
	diffusersLoRA = golden.Path("lora", "lora-diffusers.safetensors")
)

// runLoRACase runs e2e.pndm with loras and checks every step's latents (1e-3) and the image
// (one level) against lora.e2e.<ref>.
func runLoRACase(t *testing.T, p *Pipeline, ref string, loras ...LoRA) *Result {
	t.Helper()
	c := loadCase(t, "e2e.pndm")
	g := golden.MustOpen(t, golden.Path("lora", "lora-golden.safetensors"))
	steps := g.Must(t, "lora.e2e."+ref+".latents_steps")
	per := len(steps.Data) / steps.Shape[0]
	var got [][]float32
	req := c.request(t)
	req.LoRAs = loras
	req.Progress = func(pr Progress) { got = append(got, pr.Latents) }
	res, err := p.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := 1; i < len(got); i++ {
		s := &golden.Tensor{Name: steps.Name, Shape: steps.Shape[1:], Data: steps.Data[(i-1)*per : i*per]}
		worst = math.Max(worst, golden.Check(t, fmt.Sprintf("lora.e2e.%s.latents_steps[%d]", ref, i-1), got[i], s, 5e-5)) // 4.5e-6 measured
	}
	t.Logf("lora.e2e.%s: largest latent error %.3g", ref, worst)
	golden.CheckImageU8(t, "lora.e2e."+ref+".image_u8", res.Images[0], g.Must(t, "lora.e2e."+ref+".image_u8"))
	return res
}

// TestLoRA: the kohya file at 0.7 and 1.0 against diffusers; the diffusers-format file gives the
// same image; a request without LoRA afterwards gives the base image exactly.
func TestLoRA(t *testing.T) {
	p := testPipeline(t)
	c := loadCase(t, "e2e.pndm")
	base, err := p.Generate(context.Background(), c.request(t))
	if err != nil {
		t.Fatal(err)
	}
	k07 := runLoRACase(t, p, "scale0.7", LoRA{Path: kohyaLoRA, Scale: 0.7})
	runLoRACase(t, p, "scale1.0", LoRA{Path: kohyaLoRA, Scale: 1})
	d07 := runLoRACase(t, p, "scale0.7", LoRA{Path: diffusersLoRA, Scale: 0.7})
	if string(d07.Images[0].Pix) != string(k07.Images[0].Pix) {
		t.Error("the diffusers-format file gives another image than the kohya file")
	}
	after, err := p.Generate(context.Background(), c.request(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(after.Images[0].Pix) != string(base.Images[0].Pix) {
		t.Error("a request without LoRA after ones with gives another image than before")
	} else {
		t.Log("no-LoRA request after LoRA ones: the base image, byte for byte")
	}
	if got := PromptTags(k07.Request.LoRAs); got != " <lora:lora-kohya:0.7>" {
		t.Errorf("PromptTags %q", got)
	}
	if k07.Request.lora != nil {
		t.Error("Result.Request keeps the combined updates")
	}
}

// TestLoRASeveral: two adapters at once add up (0.35 + 0.35 of the same LoRA = 0.7), a scale
// of 0 is no LoRA, and concurrent requests with different adapters do not mix.
func TestLoRASeveral(t *testing.T) {
	p := testPipeline(t)
	runLoRACase(t, p, "scale0.7", LoRA{Path: kohyaLoRA, Scale: 0.35}, LoRA{Path: diffusersLoRA, Scale: 0.35})
	c := loadCase(t, "e2e.pndm")
	base, err := p.Generate(context.Background(), c.request(t))
	if err != nil {
		t.Fatal(err)
	}
	req := c.request(t)
	req.LoRAs = []LoRA{{Path: kohyaLoRA, Scale: 0}}
	zero, err := p.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if string(zero.Images[0].Pix) != string(base.Images[0].Pix) {
		t.Error("a LoRA at scale 0 changes the image")
	}
	var wg sync.WaitGroup
	for _, ref := range []string{"scale0.7", "scale1.0", "scale0.7", "scale1.0"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := map[string]float64{"scale0.7": 0.7, "scale1.0": 1}[ref]
			runLoRACase(t, p, ref, LoRA{Path: kohyaLoRA, Scale: s})
		}()
	}
	wg.Wait()
}

func TestLoRAErrors(t *testing.T) {
	p := testPipeline(t)
	a, err := lora.Load(kohyaLoRA)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		l    LoRA
		want string
	}{
		{"empty", LoRA{Scale: 1}, "neither Path nor Adapter"},
		{"missing file", LoRA{Path: "nope.safetensors", Scale: 1}, "nope.safetensors"},
		{"not a LoRA", LoRA{Path: golden.Path("tiny-sd", "vae", "diffusion_pytorch_model.safetensors"), Scale: 1}, "no plain-LoRA format"},
		{"NaN", LoRA{Adapter: a, Scale: math.NaN()}, "LoRAs[0].Scale"},
	} {
		_, err := p.Generate(context.Background(), Request{Prompt: "x", Width: 64, Height: 64, Steps: 1, LoRAs: []LoRA{c.l}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
			continue
		}
		t.Logf("%s: %v", c.name, err)
	}
}

func TestParseLoRATags(t *testing.T) {
	clean, tags, err := ParseLoRATags("a cat <lora:style_v2:0.7>, sharp <lora:detail> <lora:x: -0.5 >")
	if err != nil {
		t.Fatal(err)
	}
	if clean != "a cat , sharp  " || len(tags) != 3 || tags[0] != (LoRATag{"style_v2", 0.7}) ||
		tags[1] != (LoRATag{"detail", 1}) || tags[2] != (LoRATag{"x", -0.5}) {
		t.Errorf("%q %v", clean, tags)
	}
	for _, bad := range []string{"<lora::0.5>", "<lora:a:b>", "<lora:>"} {
		if _, _, err := ParseLoRATags(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// FuzzParseLoRATags: tag parsing never panics, and what it accepts has names and finite scales
// (one pass, as the web UI's: "<lora:<lora:x>>" leaves "<lora:>").
func FuzzParseLoRATags(f *testing.F) {
	for _, s := range []string{"a <lora:x:0.5> b", "<lora:x>", "<lora::1>", "<lora:a:b:c>", "<lora:<lora:x>>", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, prompt string) {
		clean, tags, err := ParseLoRATags(prompt)
		if err != nil {
			return
		}
		if len(clean) > len(prompt) {
			t.Fatalf("%q → %q grew", prompt, clean)
		}
		for _, tg := range tags {
			if tg.Name == "" || math.IsNaN(tg.Scale) || math.IsInf(tg.Scale, 0) {
				t.Fatalf("%q → tag %+v", prompt, tg)
			}
		}
	})
}
