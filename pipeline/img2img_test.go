package pipeline

import (
	"context"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/scheduler"
)

// u8Image turns a reference HWC uint8 image into an NRGBA image.
func u8Image(ref *golden.Tensor) *image.NRGBA {
	h, w := ref.Shape[0], ref.Shape[1]
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for p := 0; p < h*w; p++ {
		for c := 0; c < 3; c++ {
			img.Pix[4*p+c] = uint8(ref.Data[3*p+c])
		}
		img.Pix[4*p+3] = 255
	}
	return img
}

func readPNG(t *testing.T, name string) image.Image {
	t.Helper()
	f, err := os.Open(golden.Path("inpaint", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestImg2ImgGolden runs diffusers' two StableDiffusionImg2ImgPipeline references (wave2
// i2i.pndm and i2i.ddim): the timesteps run and the 8-bit image.
func TestImg2ImgGolden(t *testing.T) {
	e2e := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	ref := golden.MustOpen(t, golden.Path("img2img-golden.safetensors"))
	for _, c := range []struct {
		name, init string
		req        Request
	}{
		{"i2i.pndm", "e2e.pndm.image_u8", Request{Prompt: "a watercolor landscape with mountains", Scheduler: "pndm",
			Steps: 10, Strength: 0.6, GuidanceScale: 7.5, Seed: 11}},
		{"i2i.ddim", "e2e.rect_nocfg.image_u8", Request{Prompt: "a cat sitting on a windowsill at sunset", NegativePrompt: "blurry",
			Scheduler: "ddim", Steps: 8, Strength: 0.35, GuidanceScale: 5, Seed: 12}},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := c.req
			req.Init = u8Image(e2e.Must(t, c.init))
			calls := 0
			req.Progress = func(pr Progress) {
				if pr.Step != calls {
					t.Errorf("progress step %d, want %d", pr.Step, calls)
				}
				calls++
			}
			res, err := testPipeline(t).Generate(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			all := ref.Must(t, c.name+".timesteps").Ints() // the whole schedule
			start, _ := scheduler.StartIndex(req.Steps, req.Strength)
			want := all[start:]
			if len(res.Timesteps) != len(want) || calls != len(want)+1 {
				t.Fatalf("timesteps %v (%d progress calls), want %v", res.Timesteps, calls, want)
			}
			for i, v := range want {
				if res.Timesteps[i] != float64(v) {
					t.Fatalf("timesteps %v, want %v", res.Timesteps, want)
				}
			}
			t.Logf("%s: %d UNet calls from t=%v; encode %v, denoise %v", c.name, len(want), want[0], res.Timings.Encode, res.Timings.Denoise)
			golden.CheckImageU8(t, c.name+".image_u8", res.Images[0], ref.Must(t, c.name+".image_u8"))
			if ps := res.Parameters(0).String(); !strings.HasSuffix(ps, ", Denoising strength: "+strconv.FormatFloat(req.Strength, 'g', -1, 64)) {
				t.Errorf("parameters %q lack the denoising strength", ps)
			}
			if res.Request.Strength != req.Strength || res.Request.Width != req.Init.Bounds().Dx() {
				t.Errorf("Result.Request has Strength %v and Width %d", res.Request.Strength, res.Request.Width)
			}
		})
	}
}

// TestInpaintGolden runs diffusers' two StableDiffusionInpaintPipeline references (wave3
// inpaint.pndm at strength 1 and inpaint.ddim at 0.75): initial latents, the latents after every
// step's blend, the timesteps and the 8-bit image.
func TestInpaintGolden(t *testing.T) {
	ref := golden.MustOpen(t, golden.Path("img2img-golden.safetensors"))
	for _, c := range []struct {
		name string
		req  Request
	}{
		{"pndm", Request{Prompt: "a red cube on top of a blue sphere", Scheduler: "pndm", Steps: 6, Strength: 1, GuidanceScale: 7.5, Seed: 5}},
		{"ddim", Request{Prompt: "a cat sitting on a windowsill at sunset", NegativePrompt: "blurry, low quality", Scheduler: "ddim",
			Steps: 8, Strength: 0.75, GuidanceScale: 5, Seed: 77}},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := "inpaint." + c.name
			req := c.req
			req.Init = readPNG(t, "init_inpaint_"+c.name+".png")
			req.Mask = readPNG(t, "mask_inpaint_"+c.name+".png")
			var got [][]float32
			req.Progress = func(pr Progress) { got = append(got, pr.Latents) }
			res, err := testPipeline(t).Generate(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			want := ref.Must(t, name+".timesteps").Ints()
			if len(res.Timesteps) != len(want) || len(got) != len(want)+1 {
				t.Fatalf("timesteps %v (%d progress calls), want %v", res.Timesteps, len(got), want)
			}
			for i, v := range want {
				if res.Timesteps[i] != float64(v) {
					t.Fatalf("timesteps %v, want %v", res.Timesteps, want)
				}
			}
			init := ref.Must(t, name+".latents_init")
			golden.Check(t, name+".latents_init", got[0], init, 1e-6)
			steps := ref.Must(t, name+".latents_steps")
			per, worst := len(init.Data), 0.0
			for i := range want {
				s := &golden.Tensor{Name: steps.Name, Shape: init.Shape, Data: steps.Data[i*per : (i+1)*per]}
				worst = math.Max(worst, golden.Check(t, name+".latents_steps["+itoa(i)+"]", got[i+1], s, e2eLatentTol))
			}
			t.Logf("%s: largest latent error over %d steps %.3g", name, len(want), worst)
			golden.CheckImageU8(t, name+".image_u8", res.Images[0], ref.Must(t, name+".image_u8"))
		})
	}
}

// TestInpaintMask checks the mask's binarisation and reduction to the latent grid against the
// reference (the masks hold grey probes 127 and 128 at sampled points).
func TestInpaintMask(t *testing.T) {
	ref := golden.MustOpen(t, golden.Path("img2img-golden.safetensors"))
	for _, c := range []string{"pndm", "ddim"} {
		m := readPNG(t, "mask_inpaint_"+c+".png")
		b := m.Bounds()
		var s imageSource
		if err := s.setMask(m, b.Dx(), b.Dy(), 8); err != nil {
			t.Fatal(err)
		}
		want := ref.Must(t, "inpaint."+c+".mask")
		for i, v := range want.Data {
			if s.mask[i] != (v == 1) {
				t.Fatalf("%s: pixel mask differs at %d", c, i)
			}
		}
		wl := ref.Must(t, "inpaint."+c+".mask_latent")
		golden.Check(t, "inpaint."+c+".mask_latent", s.maskLatent, wl, 0)
	}
}

// TestImg2ImgEveryScheduler: every scheduler runs img2img and inpainting at strength 0.5.
func TestImg2ImgEveryScheduler(t *testing.T) {
	p := testPipeline(t)
	init := readPNG(t, "init_inpaint_pndm.png")
	mask := readPNG(t, "mask_inpaint_pndm.png")
	for _, name := range scheduler.Names() {
		for _, m := range []image.Image{nil, mask} {
			res, err := p.Generate(context.Background(), Request{Prompt: "a house", Scheduler: name, Steps: 4, Strength: 0.5,
				Seed: 1, Init: init, Mask: m, NumImages: 2})
			if err != nil {
				t.Fatalf("%s (mask %v): %v", name, m != nil, err)
			}
			if len(res.Images) != 2 || len(res.Timesteps) < 2 {
				t.Fatalf("%s: %d images, timesteps %v", name, len(res.Images), res.Timesteps)
			}
		}
	}
}

func TestImg2ImgBadRequests(t *testing.T) {
	p := testPipeline(t)
	init := readPNG(t, "init_inpaint_pndm.png")
	mask := readPNG(t, "mask_inpaint_pndm.png")
	small := image.NewGray(image.Rect(0, 0, 64, 64))
	odd := image.NewRGBA(image.Rect(0, 0, 100, 64))
	for _, c := range []struct {
		req  Request
		want string
	}{
		{Request{Mask: mask}, "Request.Mask is set without Request.Init"},
		{Request{Strength: 0.5}, "Request.Strength is set without Request.Init"},
		{Request{PasteOriginal: true}, "Request.PasteOriginal"},
		{Request{Init: init, PasteOriginal: true}, "PasteOriginal is set without Request.Mask"},
		{Request{Init: init, Strength: 1.5}, "Request.Strength 1.5 is not in (0, 1]"},
		{Request{Init: init, Strength: -0.1}, "Request.Strength -0.1"},
		{Request{Init: init, Strength: math.NaN()}, "Request.Strength NaN"},
		{Request{Init: init, Strength: 0.1, Steps: 5}, "runs no step"},
		{Request{Init: init, Mask: small}, "Request.Mask is 64x64 pixels but Request.Init is 128x128"},
		{Request{Init: image.NewRGBA(image.Rect(0, 0, 4, 4))}, "Request.Init is 4x4 pixels"},
		{Request{Init: odd, Width: 12}, "Request.Width 12 is not a positive multiple of 8"},
	} {
		c.req.Prompt = "x"
		c.req.Steps = max(c.req.Steps, 2)
		if _, err := p.Generate(context.Background(), c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one containing %q", err, c.want)
		}
	}
}

// TestInpaintKeepAll: a mask with nothing to repaint gives the image's VAE round trip, as
// diffusers does (every step puts the image's latents back), without running the UNet.
func TestInpaintKeepAll(t *testing.T) {
	p := testPipeline(t)
	init := readPNG(t, "init_inpaint_pndm.png")
	black := image.NewGray(init.Bounds())
	res, err := p.Generate(context.Background(), Request{Prompt: "x", Steps: 4, Seed: 5, Init: init, Mask: black, Strength: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Timings.Steps) != 0 {
		t.Errorf("%d UNet steps ran for an all-black mask", len(res.Timings.Steps))
	}
	// The same image via img2img's encoding: the round trip of the image's latents.
	ref := golden.MustOpen(t, golden.Path("img2img-golden.safetensors"))
	lat := ref.Must(t, "inpaint.pndm.image_latents").F32()
	imgs, err := p.decode(context.Background(), lat, [4]int{1, 4, 16, 16})
	if err != nil {
		t.Fatal(err)
	}
	for i := range imgs[0].Pix {
		if d := int(imgs[0].Pix[i]) - int(res.Images[0].Pix[i]); d > 1 || d < -1 {
			t.Fatalf("value %d differs from the round trip by %d levels", i, d)
		}
	}
}

// TestPasteOriginal: with PasteOriginal the kept pixels are the init image's, the others the
// generated ones.
func TestPasteOriginal(t *testing.T) {
	p := testPipeline(t)
	init := readPNG(t, "init_inpaint_ddim.png")
	mask := readPNG(t, "mask_inpaint_ddim.png")
	req := Request{Prompt: "x", Steps: 2, Seed: 3, Init: init, Mask: mask, Strength: 1}
	plain, err := p.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	req.PasteOriginal = true
	pasted, err := p.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b := init.Bounds()
	kept := 0
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			want := plain.Images[0].NRGBAAt(x, y)
			if luma(mask.At(x, y)) < 128 {
				want = color.NRGBAModel.Convert(init.At(x, y)).(color.NRGBA)
				kept++
			}
			if got := pasted.Images[0].NRGBAAt(x, y); got != want {
				t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, got, want)
			}
		}
	}
	t.Logf("%d of %d pixels pasted", kept, b.Dx()*b.Dy())
}

// TestImg2ImgGreyAndAlpha: a grey or a translucent init image is used as PIL's convert("RGB")
// sees it.
func TestImg2ImgGreyAndAlpha(t *testing.T) {
	p := testPipeline(t)
	src := readPNG(t, "init_inpaint_pndm.png")
	b := src.Bounds()
	grey := image.NewGray(b)
	rgb := image.NewNRGBA(b)
	alpha := image.NewNRGBA(b)
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			g := luma(src.At(x, y))
			grey.SetGray(x, y, color.Gray{g})
			rgb.SetNRGBA(x, y, color.NRGBA{g, g, g, 255})
			c := color.NRGBAModel.Convert(src.At(x, y)).(color.NRGBA)
			alpha.SetNRGBA(x, y, color.NRGBA{c.R, c.G, c.B, uint8(x)})
		}
	}
	gen := func(img image.Image) *image.NRGBA {
		res, err := p.Generate(context.Background(), Request{Prompt: "x", Steps: 2, Seed: 9, Init: img, Strength: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		return res.Images[0]
	}
	if a, b := gen(grey), gen(rgb); string(a.Pix) != string(b.Pix) {
		t.Error("a grey init image gives another image than its RGB copy")
	}
	if a, b := gen(alpha), gen(src); string(a.Pix) != string(b.Pix) {
		t.Error("a translucent init image gives another image than its opaque colours")
	}
}

// TestImg2ImgResize: an init image (and mask) of another size is resized with PIL's Lanczos
// filter to the request's size — by default its own, rounded down to a multiple of 8 — and
// gives what the resized picture gives.
func TestImg2ImgResize(t *testing.T) {
	p := testPipeline(t)
	src := readPNG(t, "init_inpaint_pndm.png")
	mask := readPNG(t, "mask_inpaint_pndm.png")
	crop := func(img image.Image, w, h int) image.Image {
		return img.(interface {
			SubImage(image.Rectangle) image.Image
		}).SubImage(image.Rect(3, 5, 3+w, 5+h))
	}
	odd, oddMask := crop(src, 101, 70), crop(mask, 101, 70) // becomes 96×64
	for _, c := range []struct {
		init, mask image.Image
		w, h       int
		wantW      int
	}{
		{odd, nil, 0, 0, 96},
		{odd, oddMask, 0, 0, 96},
		{src, mask, 64, 48, 64},
	} {
		req := Request{Prompt: "x", Steps: 2, Seed: 4, Strength: 0.5, Init: c.init, Mask: c.mask, Width: c.w, Height: c.h}
		res, err := p.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		W, H := res.Request.Width, res.Request.Height
		if W != c.wantW || res.Images[0].Bounds().Dx() != W || res.Images[0].Bounds().Dy() != H {
			t.Fatalf("images %v, Request %dx%d, want width %d", res.Images[0].Bounds(), W, H, c.wantW)
		}
		// The same request with the picture (and the mask) resized beforehand.
		pre, err := rgbImage(c.init, W, H)
		if err != nil {
			t.Fatal(err)
		}
		req.Init, req.Width, req.Height = pre, 0, 0
		if c.mask != nil {
			var s imageSource
			if err := s.setMask(c.mask, W, H, 8); err != nil {
				t.Fatal(err)
			}
			m := image.NewGray(image.Rect(0, 0, W, H))
			for i, v := range s.mask {
				if v {
					m.Pix[i] = 255
				}
			}
			req.Mask = m
		}
		again, err := p.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if string(again.Images[0].Pix) != string(res.Images[0].Pix) {
			t.Errorf("%dx%d: the resized request differs from the request with the picture resized beforehand", W, H)
		}
	}
}
