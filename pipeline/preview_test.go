package pipeline

import (
	"bytes"
	"context"
	"image"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/vae"
)

// TestTAESDFinalDecode runs e2e.pndm with WithVAE(TAESD): the denoising is the same, and the image
// is the tiny TAESD's decode of the final latents (the wave3 reference taesd.dec.sample, which
// decodes exactly those latents), postprocessed.
func TestTAESDFinalDecode(t *testing.T) {
	p, err := Load(golden.Path("tiny-sd"), WithVAE(golden.Path("taesd-tiny")))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := loadCase(t, "e2e.pndm")
	res, err := p.Generate(context.Background(), c.request(t))
	if err != nil {
		t.Fatal(err)
	}
	ref := golden.MustOpen(t, golden.Path("wave3-lpw-taesd.safetensors")).Must(t, "taesd.dec.sample")
	want, err := vae.ToImages(denseRef(ref))
	if err != nil {
		t.Fatal(err)
	}
	golden.CheckImageU8(t, "taesd final decode", res.Images[0], hwc(want[0]))
}

func TestPreviews(t *testing.T) {
	ctx := context.Background()
	base := Request{Prompt: "a red cube", Steps: 3, Width: 64, Height: 48, Seed: 1, NumImages: 2}

	// Without a TAESD: the linear map, at the latents' size, on every step but the first.
	p := testPipeline(t)
	var sizes []string
	var last []byte
	changed := 0
	req := base
	req.PreviewEvery = 1
	req.Progress = func(pr Progress) {
		if pr.Step == 0 {
			if pr.Previews != nil {
				t.Error("a preview of the noise")
			}
			return
		}
		if len(pr.Previews) != 2 {
			t.Fatalf("step %d: %d previews, want 2", pr.Step, len(pr.Previews))
		}
		b := pr.Previews[0].Bounds()
		sizes = append(sizes, b.String())
		if last != nil && !bytes.Equal(last, pr.Previews[0].Pix) {
			changed++
		}
		last = pr.Previews[0].Pix
	}
	if _, err := p.Generate(ctx, req); err != nil {
		t.Fatal(err)
	}
	t.Logf("linear previews: %v, changed %d times", sizes, changed)
	if len(sizes) != 4 || sizes[0] != "(0,0)-(8,6)" || changed == 0 {
		t.Errorf("linear previews %v (changed %d times), want 4 of 8×6 that change", sizes, changed)
	}

	// With WithPreviewDecoder: TAESD, full size, every second step and the last.
	pt, err := Load(golden.Path("tiny-sd"), WithPreviewDecoder(golden.Path("taesd-tiny")))
	if err != nil {
		t.Fatal(err)
	}
	defer pt.Close()
	sizes = nil
	req.PreviewEvery = 2
	req.Progress = func(pr Progress) {
		if pr.Previews != nil {
			sizes = append(sizes, itoa(pr.Step)+":"+pr.Previews[1].Bounds().String())
		}
	}
	res, err := pt.Generate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("TAESD previews: %v", sizes)
	if strings.Join(sizes, " ") != "2:(0,0)-(64,48) 4:(0,0)-(64,48)" {
		t.Errorf("TAESD previews %v, want steps 2 and 4 at 64×48", sizes)
	}
	// The final image is still the VAE's.
	want, err := p.Generate(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Images[1].Pix, want.Images[1].Pix) {
		t.Error("a preview decoder changed the final image")
	}
}

func TestLinearPreview(t *testing.T) {
	lat := []float32{
		1, 0, // channel 0
		0, 0, // channel 1
		0, 0, // channel 2
		0, 1, // channel 3
	}
	imgs, err := LinearPreview(lat, [4]int{1, 4, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	got := imgs[0].Pix
	// Pixel 0: (0.298, 0.207, 0.208)/2 + 0.5; pixel 1: (−0.184, −0.271, −0.473)/2 + 0.5.
	want := []uint8{165, 154, 154, 255, 104, 93, 67, 255}
	if !bytes.Equal(got, want) {
		t.Errorf("pixels %v, want %v", got, want)
	}
	if _, err := LinearPreview(lat, [4]int{1, 3, 1, 2}); err == nil {
		t.Error("3-channel latents: no error")
	}
	if _, err := LinearPreview(lat[:7], [4]int{1, 4, 1, 2}); err == nil {
		t.Error("short latents: no error")
	}
}

func TestVAEOptions(t *testing.T) {
	if _, err := Load(golden.Path("tiny-sd"), WithPreviewDecoder(golden.Path("tiny-sd", "vae"))); err == nil ||
		!strings.Contains(err.Error(), "AutoencoderTiny") {
		t.Errorf("an AutoencoderKL as preview decoder: %v", err)
	}
	if _, err := Load(golden.Path("tiny-sd"), WithVAE(golden.Path("no-such-folder"))); err == nil ||
		!strings.Contains(err.Error(), "WithVAE") {
		t.Errorf("a missing VAE folder: %v", err)
	}
	// Another AutoencoderKL (here the model's own, given as a whole model folder) replaces the VAE.
	p, err := Load(golden.Path("tiny-sd"), WithVAE(golden.Path("tiny-sd")))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	req := Request{Prompt: "a", Steps: 2, Width: 64, Height: 64, Seed: 3}
	got, err := p.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want, err := testPipeline(t).Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Images[0].Pix, want.Images[0].Pix) {
		t.Error("WithVAE(the model's own VAE) changed the image")
	}
}

// hwc turns an image into a reference tensor of its RGB bytes (H×W×3), for golden.CheckImageU8.
func hwc(img *image.NRGBA) *golden.Tensor {
	b := img.Bounds()
	t := &golden.Tensor{Name: "hwc", Shape: []int{b.Dy(), b.Dx(), 3}}
	for y := range b.Dy() {
		for x := range b.Dx() {
			for c := range 3 {
				t.Data = append(t.Data, float64(img.Pix[y*img.Stride+4*x+c]))
			}
		}
	}
	return t
}
