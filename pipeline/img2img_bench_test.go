package pipeline

import (
	"image"
	"image/color"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/vae"
	"github.com/smallsd/smallsd/weights"
)

// BenchmarkImg2ImgSmallSD512 changes a 512×512 picture at strength 0.75 in 25 PNDM steps
// with guidance, as img2img does by default (19 UNet calls), with the full-size small-sd
// models and the SD VAE encoder on synthetic weights. Run it alone:
//
//	go test ./pipeline -run '^$' -bench 'Img2ImgSmallSD512$' -benchtime 1x -timeout 2h
func BenchmarkImg2ImgSmallSD512(b *testing.B) { benchImage(b, false) }

// BenchmarkInpaintSmallSD512 is BenchmarkImg2ImgSmallSD512 with a mask (the middle half of the
// picture repainted).
func BenchmarkInpaintSmallSD512(b *testing.B) { benchImage(b, true) }

func benchImage(b *testing.B, inpaint bool) {
	benchRequest(b, false, false, func(p *Pipeline) Request {
		cfg, err := vae.LoadConfig(golden.Path("configs", "vae"))
		if err != nil {
			b.Fatal(err)
		}
		manifest, err := weights.ReadManifest(golden.Path("manifests", "vae-sd.txt"))
		if err != nil {
			b.Fatal(err)
		}
		s, err := weights.NewSyntheticFromManifest(manifest)
		if err != nil {
			b.Fatal(err)
		}
		if p.enc, err = vae.NewEncoder(cfg, s.View()); err != nil {
			b.Fatal(err)
		}
		init := image.NewNRGBA(image.Rect(0, 0, 512, 512))
		for i := range init.Pix {
			init.Pix[i] = uint8(i * 7 % 251)
		}
		req := Request{Prompt: "a photograph of an astronaut riding a horse", Steps: 25, GuidanceScale: 7.5,
			Seed: 42, Init: init}
		if inpaint {
			mask := image.NewGray(init.Bounds())
			for y := 128; y < 384; y++ {
				for x := 128; x < 384; x++ {
					mask.SetGray(x, y, color.Gray{255})
				}
			}
			req.Mask = mask
		}
		return req
	})
}
