package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/pipeline/pngmeta"
)

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

// TestRunInpaint runs diffusers' inpainting reference case (wave3 inpaint.ddim) through the
// command and checks the PNG and its parameters.
func TestRunInpaint(t *testing.T) {
	ref := golden.MustOpen(t, golden.Path("img2img-golden.safetensors"))
	out := filepath.Join(t.TempDir(), "img.png")
	var stdout, stderr bytes.Buffer
	args := []string{"-model", golden.Path("tiny-sd"), "-prompt", "a cat sitting on a windowsill at sunset",
		"-negative", "blurry, low quality", "-scheduler", "ddim", "-steps", "8", "-strength", "0.75", "-guidance", "5",
		"-seed", "77", "-init", golden.Path("inpaint", "init_inpaint_ddim.png"), "-mask", golden.Path("inpaint", "mask_inpaint_ddim.png"),
		"-out", out}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	t.Logf("stdout:\n%s", stdout.String())
	if !strings.Contains(stdout.String(), "encode ") || !strings.Contains(stderr.String(), "step 6/6") {
		t.Errorf("stdout or stderr lack the encode time or the 6 steps:\n%s\n%s", stdout.String(), stderr.String())
	}
	img, p := readPNG(t, out)
	golden.CheckImageU8(t, "inpaint.ddim", img, ref.Must(t, "inpaint.ddim.image_u8"))
	want := "a cat sitting on a windowsill at sunset\nNegative prompt: blurry, low quality\n" +
		"Steps: 8, Sampler: DDIM, CFG scale: 5.0, Seed: 77, Size: 128x96, Model: tiny-sd, Denoising strength: 0.75"
	if p.String() != want {
		t.Errorf("parameters:\n%s\nwant\n%s", p, want)
	}
}

// TestRunImg2Img runs diffusers' img2img reference case (wave2 i2i.pndm) from a PNG, twice in
// one batch.
func TestRunImg2Img(t *testing.T) {
	e2e := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	ref := golden.MustOpen(t, golden.Path("img2img-golden.safetensors"))
	dir := t.TempDir()
	u8 := e2e.Must(t, "e2e.pndm.image_u8")
	init := image.NewRGBA(image.Rect(0, 0, 128, 128))
	for p := 0; p < 128*128; p++ {
		copy(init.Pix[4*p:], []uint8{uint8(u8.Data[3*p]), uint8(u8.Data[3*p+1]), uint8(u8.Data[3*p+2]), 255})
	}
	f, err := os.Create(filepath.Join(dir, "init.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, init); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var stdout, stderr bytes.Buffer
	args := []string{"-model", golden.Path("tiny-sd"), "-prompt", "a watercolor landscape with mountains", "-scheduler", "pndm",
		"-steps", "10", "-strength", "0.6", "-seed", "11", "-init", filepath.Join(dir, "init.png"), "-out", filepath.Join(dir, "out.png")}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	img, p := readPNG(t, filepath.Join(dir, "out.png"))
	golden.CheckImageU8(t, "i2i.pndm", img, ref.Must(t, "i2i.pndm.image_u8"))
	if !strings.HasSuffix(p.String(), "Size: 128x128, Model: tiny-sd, Denoising strength: 0.6") {
		t.Errorf("parameters:\n%s", p)
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	model := golden.Path("tiny-sd")
	init := golden.Path("inpaint", "init_inpaint_ddim.png")
	notImage := filepath.Join(dir, "x.png")
	os.WriteFile(notImage, []byte("not a picture"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-prompt", "x"}, "-init is required"},
		{[]string{"-prompt", "x", "-init", init, "-strength", "0"}, "-strength 0"},
		{[]string{"-prompt", "x", "-init", init, "-strength", "1.5"}, "-strength 1.5"},
		{[]string{"-prompt", "x", "-init", init, "-paste"}, "-paste needs -mask"},
		{[]string{"-prompt", "x", "-init", filepath.Join(dir, "missing.png")}, "-init: open"},
		{[]string{"-prompt", "x", "-init", notImage}, "-init " + notImage + ": not a PNG or JPEG"},
		{[]string{"-prompt", "x", "-init", init, "-mask", golden.Path("inpaint", "mask_inpaint_pndm.png")}, "Request.Mask is 128x128 pixels but Request.Init is 128x96"},
		{[]string{"-prompt", "x", "-init", init, "-width", "60"}, "-width 60"},
		{[]string{"-init", init}, "-prompt is required"},
	} {
		args := append([]string{"-model", model, "-steps", "2", "-out", filepath.Join(dir, "o.png")}, c.args...)
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}
