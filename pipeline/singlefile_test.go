package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// TestSingleFile: tiny-sd's weights in one LDM-named file, with tiny-sd's configs, give the
// folder's images exactly (and so the reference's within one level).
func TestSingleFile(t *testing.T) {
	p, err := Load(golden.Path("single-file", "tiny-sd.ldm.safetensors"), WithConfigFrom(golden.Path("tiny-sd")))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Name() != "tiny-sd.ldm" {
		t.Errorf("Name %q", p.Name())
	}
	res := runCase(t, p, "e2e.pndm")
	ref, err := testPipeline(t).Generate(context.Background(), res.Request)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Images[0].Pix) != string(ref.Images[0].Pix) {
		t.Error("the single file's image differs from the folder's")
	} else {
		t.Log("image equal to the folder's, byte for byte")
	}
}

// TestSingleFileCkpt: the fp16 .ckpt (a zip pickle with state_dict) loads and gives the image
// of the fp16-rounded weights: close to the folder's.
func TestSingleFileCkpt(t *testing.T) {
	p, err := Load(golden.Path("single-file", "tiny-sd.ldm.ckpt"), WithConfigFrom(golden.Path("tiny-sd")))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := loadCase(t, "e2e.pndm")
	res, err := p.Generate(context.Background(), c.request(t))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := testPipeline(t).Generate(context.Background(), res.Request)
	if err != nil {
		t.Fatal(err)
	}
	maxd, sum := 0, 0
	for i, v := range res.Images[0].Pix {
		d := int(v) - int(ref.Images[0].Pix[i])
		d = max(d, -d)
		maxd, sum = max(maxd, d), sum+d
	}
	t.Logf("fp16 .ckpt vs the fp32 folder: max difference %d levels, mean %.3f", maxd, float64(sum)/float64(len(res.Images[0].Pix)))
	if maxd > 8 {
		t.Errorf("fp16 .ckpt image differs from the folder's by up to %d levels", maxd)
	}
}

// TestSingleFileDefaults: without configs, the SD 1.x defaults are inferred; tiny-sd's
// 795-token text encoder does not fit the built-in CLIP tokenizer, and the error says what to do.
func TestSingleFileErrors(t *testing.T) {
	for _, c := range []struct {
		name, path string
		opts       []Option
		want       string
	}{
		{"defaults", golden.Path("single-file", "tiny-sd.ldm.safetensors"), nil, "WithConfigFrom"},
		{"lora", golden.Path("lora", "lora-kohya.safetensors"), nil, "lora-kohya.safetensors is a LoRA"},
		{"bad config folder", golden.Path("single-file", "tiny-sd.ldm.safetensors"), []Option{WithConfigFrom(golden.Path("single-file"))}, "model_index.json"},
	} {
		p, err := Load(c.path, c.opts...)
		if err == nil {
			p.Close()
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want it to mention %q", c.name, err, c.want)
		}
		t.Logf("%s: %v", c.name, err)
	}
}

// TestSingleFileImg2Img: the VAE encoder maps too: img2img from the single file equals the
// folder's.
func TestSingleFileImg2Img(t *testing.T) {
	p, err := Load(golden.Path("single-file", "tiny-sd.ldm.safetensors"), WithConfigFrom(golden.Path("tiny-sd")))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	base, err := testPipeline(t).Generate(context.Background(), Request{Prompt: "a apple", Width: 64, Height: 64, Steps: 2, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Prompt: "a pear", Width: 64, Height: 64, Steps: 3, Seed: 4, Init: base.Images[0], Strength: 0.6}
	got, err := p.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want, err := testPipeline(t).Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Images[0].Pix) != string(want.Images[0].Pix) {
		t.Error("img2img from the single file differs from the folder's")
	}
}

// TestSingleFileHalf: half weights from the single file equal half weights from the folder.
func TestSingleFileHalf(t *testing.T) {
	p, err := Load(golden.Path("single-file", "tiny-sd.ldm.safetensors"), WithConfigFrom(golden.Path("tiny-sd")), WithHalfWeights())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	q, err := Load(golden.Path("tiny-sd"), WithHalfWeights())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	req := Request{Prompt: "a apple", Width: 64, Height: 64, Steps: 3, Seed: 9}
	a, err := p.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := q.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Images[0].Pix) != string(b.Images[0].Pix) {
		t.Error("half weights: the single file's image differs from the folder's")
	}
}
