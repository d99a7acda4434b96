package pipeline

import (
	"context"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// By default a loaded pipeline takes each model's mapped weights out of memory when its stage
// is over; the next image reads them again from the file and is the same, bit for bit, as the
// first and as the images of a pipeline that keeps its memory (WithKeepMemory). The text
// encoder's packed Linear weights are dropped after encoding and packed again for the next image.
func TestReleasedWeightsGiveTheSameImages(t *testing.T) {
	req := Request{Prompt: "a cat", Width: 64, Height: 64, Steps: 3, Seed: 7}
	gen := func(p *Pipeline) []byte {
		t.Helper()
		res, err := p.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return res.Images[0].Pix
	}
	p, err := Load(golden.Path("tiny-sd"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	atLoad := p.releasedPages.Load()
	if mmapWeights && atLoad == 0 {
		t.Error("the pages building the models read were not released after Load")
	}
	first := gen(p)
	released := p.releasedPages.Load()
	if mmapWeights && released <= atLoad {
		t.Error("no weight pages were released after an image")
	}
	t.Logf("weight mappings advised out after one image: %d bytes", released)
	if p.stepFree.Load() == 0 {
		t.Error("no memory was returned between denoising steps")
	}
	if fc1 := p.text.Layers[0].MLP.FC1; fc1.Weight.Packed != nil {
		t.Error("the text encoder's packed Linear weights were kept after encoding")
	}
	if second := gen(p); string(second) != string(first) {
		t.Error("the second image, after the weights were released, differs from the first")
	}
	if got := p.releasedPages.Load(); mmapWeights && got <= released {
		t.Errorf("released %d bytes after two images, %d after one", got, released)
	}

	r, err := Load(golden.Path("tiny-sd"), WithKeepMemory())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if img := gen(r); string(img) != string(first) {
		t.Error("WithKeepMemory gives another image")
	}
	if n := r.releasedPages.Load(); n != 0 {
		t.Errorf("WithKeepMemory: %d bytes of weights released, want none", n)
	}
	if r.text.Layers[0].MLP.FC1.Weight.Packed == nil {
		t.Error("WithKeepMemory: the text encoder's packed Linear weights were dropped")
	}
	if r.stepFree.Load() != 0 {
		t.Error("WithKeepMemory: memory was returned between denoising steps")
	}
}

// With half weights too, the text encoder's packed fp16 panels are dropped after encoding and the
// second image, with them packed again from the file, is the first bit for bit.
func TestReleasedHalfWeightsGiveTheSameImages(t *testing.T) {
	req := Request{Prompt: "a cat", Width: 64, Height: 64, Steps: 2, Seed: 7}
	p, err := Load(golden.Path("tiny-sd"), WithHalfWeights())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var imgs [2][]byte
	for i := range imgs {
		res, err := p.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		imgs[i] = res.Images[0].Pix
		if p.text.Layers[0].MLP.FC1.Weight.Packed != nil {
			t.Error("the text encoder's packed Linear weights were kept after encoding")
		}
	}
	if string(imgs[0]) != string(imgs[1]) {
		t.Error("the second image, with the text encoder packed again, differs from the first")
	}
}
