package pipeline

// Image-to-image and inpainting: Request.Init, Strength, Mask and PasteOriginal.

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"

	"github.com/smallsd/smallsd/internal/pilresize"
	"github.com/smallsd/smallsd/scheduler"
	"github.com/smallsd/smallsd/torchrand"
	"github.com/smallsd/smallsd/vae"
	"gorgonia.org/tensor"
)

// DefaultStrength is the Strength of an image-to-image or inpainting Request that gives none:
// AUTOMATIC1111's default denoising strength (diffusers' pipelines default to 0.8 for
// img2img and 1.0 for inpainting; pass those to match their defaults).
const DefaultStrength = 0.75

// imageSource is the prepared image of an img2img or inpainting request. A nil *imageSource
// (text-to-image) does nothing.
type imageSource struct {
	pixels  *image.NRGBA // Init at the output size, opaque RGB
	latents []float32    // scaling_factor × the encoder's sample, repeated for each image
	noise   []float32    // the noise the initial latents were made with

	// Inpainting only.
	mask       []bool    // per pixel of pixels: true = repaint (luma ≥ 128)
	maskLatent []float32 // per latent position: 1 = repaint, 0 = keep (the pixel at 8i, 8j)
	keepAll    bool      // maskLatent is all 0: the result is the image's latents
	paste      bool      // PasteOriginal
}

// resolveImage checks the image-to-image fields of r and fills in their defaults (Strength,
// and Width and Height from Init).
func (p *Pipeline) resolveImage(r *Request) error {
	if r.Init == nil {
		switch {
		case r.Mask != nil:
			return errors.New("pipeline: Request.Mask is set without Request.Init (inpainting needs the image to repaint)")
		case r.Strength != 0:
			return errors.New("pipeline: Request.Strength is set without Request.Init (it is the strength of image-to-image)")
		case r.PasteOriginal:
			return errors.New("pipeline: Request.PasteOriginal is set without Request.Init and Request.Mask")
		}
		return nil
	}
	if r.Strength == 0 {
		r.Strength = DefaultStrength
	}
	if !(r.Strength > 0 && r.Strength <= 1) {
		return fmt.Errorf("pipeline: Request.Strength %v is not in (0, 1]", r.Strength)
	}
	b := r.Init.Bounds()
	f := p.vae.Config().UpscaleFactor()
	if b.Dx() < f || b.Dy() < f {
		return fmt.Errorf("pipeline: Request.Init is %dx%d pixels, want at least %dx%d", b.Dx(), b.Dy(), f, f)
	}
	if r.Mask != nil {
		if m := r.Mask.Bounds(); m.Dx() != b.Dx() || m.Dy() != b.Dy() {
			return fmt.Errorf("pipeline: Request.Mask is %dx%d pixels but Request.Init is %dx%d: they must match", m.Dx(), m.Dy(), b.Dx(), b.Dy())
		}
	} else if r.PasteOriginal {
		return errors.New("pipeline: Request.PasteOriginal is set without Request.Mask (it pastes the unmasked pixels)")
	}
	// diffusers' VaeImageProcessor: the image's own size, rounded down to a multiple of 8 (the
	// image and the mask are resized to the size the request asks for).
	if r.Width == 0 {
		r.Width = b.Dx() - b.Dx()%f
	}
	if r.Height == 0 {
		r.Height = b.Dy() - b.Dy()%f
	}
	return nil
}

// setStart sets the first step of an image-to-image request (0 for text-to-image) and returns it.
func (p *Pipeline) setStart(r Request, sched scheduler.Scheduler) (int, error) {
	if r.Init == nil {
		return 0, nil
	}
	first, err := scheduler.StartIndex(r.Steps, r.Strength)
	if err != nil {
		return 0, fmt.Errorf("pipeline: Request.Strength and Steps: %w", err)
	}
	if err := sched.SetStart(first); err != nil {
		return 0, fmt.Errorf("pipeline: %w", err)
	}
	return first, nil
}

// prepareImage does what diffusers' img2img and inpainting pipelines do before their loop: the
// image to [-1, 1], the encoder's sample (the generator's first draw) × scaling_factor, the
// noise (the second), for inpainting the masked image's sample (a third draw, whose value a
// 4-channel UNet does not use) and the latent mask; and the initial latents: the image's
// latents noised to step first — or, for inpainting at strength 1, noise × init_noise_sigma.
func (p *Pipeline) prepareImage(ctx context.Context, r Request, sched scheduler.Scheduler, first int, gen *torchrand.Generator, shape [4]int) (*imageSource, []float32, error) {
	enc, err := p.encoder()
	if err != nil {
		return nil, nil, err
	}
	W, H := r.Width, r.Height
	pixels, err := rgbImage(r.Init, W, H)
	if err != nil {
		return nil, nil, err
	}
	src := &imageSource{pixels: pixels, paste: r.PasteOriginal}
	x := make([]float32, 3*H*W)
	for y := 0; y < H; y++ {
		row := src.pixels.Pix[y*src.pixels.Stride:]
		for xx := 0; xx < W; xx++ {
			for c := 0; c < 3; c++ {
				v := float32(row[4*xx+c]) / 255 // PIL → numpy float32, then 2x − 1
				x[c*H*W+y*W+xx] = 2*v - 1
			}
		}
	}
	dist, err := enc.Encode(ctx, tensor.New(tensor.WithShape(1, 3, H, W), tensor.WithBacking(x)))
	p.endStage(enc, true)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: VAE encoder: %w", err)
	}
	if dist.Shape != [4]int{1, shape[1], shape[2], shape[3]} {
		return nil, nil, fmt.Errorf("pipeline: the VAE encoder gave latents of shape %v, want %v", dist.Shape, [4]int{1, shape[1], shape[2], shape[3]})
	}
	one := dist.Sample(gen)
	sf := float32(p.vae.Config().ScalingFactor)
	src.latents = make([]float32, 0, len(one)*shape[0])
	for range shape[0] { // num_images_per_prompt: the one encoding repeated
		for _, v := range one {
			src.latents = append(src.latents, sf*v)
		}
	}
	src.noise = gen.Randn(shape[:]...)
	if r.Mask != nil {
		gen.Randn(dist.Shape[:]...) // the masked image's latent sample, unused with a 4-channel UNet
		if err := src.setMask(r.Mask, W, H, p.vae.Config().UpscaleFactor()); err != nil {
			return nil, nil, err
		}
	}
	if r.Mask != nil && r.Strength == 1 {
		latents := make([]float32, len(src.noise))
		sigma := sched.InitNoiseSigma()
		for i, v := range src.noise {
			latents[i] = v * sigma
		}
		return src, latents, nil
	}
	latents, err := sched.AddNoise(src.latents, src.noise, first)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: %w", err)
	}
	return src, latents, nil
}

// setMask binarises the mask as diffusers' mask processor does (PIL's convert("L"), resized to
// W×H with Lanczos, /255, ≥ 0.5 repaints) and reduces it to the latent grid by nearest neighbour
// (torch's interpolate: the pixel at (f·i, f·j) of each f×f cell, not an average).
func (s *imageSource) setMask(m image.Image, W, H, f int) error {
	b := m.Bounds()
	l := make([]uint8, b.Dx()*b.Dy())
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			l[y*b.Dx()+x] = luma(m.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	l, err := pilresize.Resize(l, b.Dx(), b.Dy(), 1, W, H, pilresize.Lanczos)
	if err != nil {
		return fmt.Errorf("pipeline: Request.Mask: %w", err)
	}
	s.mask = make([]bool, W*H)
	for i, v := range l {
		s.mask[i] = v >= 128
	}
	h, w := H/f, W/f
	s.maskLatent = make([]float32, h*w)
	s.keepAll = true
	for i := 0; i < h; i++ {
		for j := 0; j < w; j++ {
			if s.mask[f*i*W+f*j] {
				s.maskLatent[i*w+j] = 1
				s.keepAll = false
			}
		}
	}
	return nil
}

// luma is PIL's conversion to "L": ITU-R 601-2 luma in 16-bit fixed point, alpha ignored.
func luma(c color.Color) uint8 {
	if g, ok := c.(color.Gray); ok {
		return g.Y
	}
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return uint8((uint32(n.R)*19595 + uint32(n.G)*38470 + uint32(n.B)*7471 + 0x8000) >> 16)
}

// rgbImage returns img as an opaque RGB NRGBA image of W×H pixels, the way PIL's
// convert("RGB") sees it — grey replicated, alpha dropped (colours kept as stored, not
// composited onto a background) — resized with PIL's Lanczos filter as diffusers'
// VaeImageProcessor does when the size differs.
func rgbImage(img image.Image, W, H int) (*image.NRGBA, error) {
	b := img.Bounds()
	rgb := make([]uint8, 0, 3*b.Dx()*b.Dy())
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			n := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			rgb = append(rgb, n.R, n.G, n.B)
		}
	}
	rgb, err := pilresize.Resize(rgb, b.Dx(), b.Dy(), 3, W, H, pilresize.Lanczos)
	if err != nil {
		return nil, fmt.Errorf("pipeline: Request.Init: %w", err)
	}
	out := image.NewNRGBA(image.Rect(0, 0, W, H))
	for p := 0; p < W*H; p++ {
		copy(out.Pix[4*p:], rgb[3*p:3*p+3])
		out.Pix[4*p+3] = 255
	}
	return out, nil
}

// keepsAll reports whether an inpainting mask leaves nothing to repaint: every step would put
// the image's latents back, so the loop is skipped and the result is the image's round trip
// through the VAE, as diffusers' result is.
func (s *imageSource) keepsAll() bool { return s != nil && s.keepAll }

// blend is the inpainting step of a 4-channel UNet: outside the mask the latents after step i
// are replaced by the image's latents noised to the next timestep (the clean latents after
// the last step). img2img and text-to-image leave them as they are.
func (s *imageSource) blend(sched scheduler.Scheduler, i int, latents []float32) ([]float32, error) {
	if s == nil || s.maskLatent == nil {
		return latents, nil
	}
	proper := s.latents
	if i+1 < len(sched.Timesteps()) {
		var err error
		if proper, err = sched.AddNoise(s.latents, s.noise, i+1); err != nil {
			return nil, fmt.Errorf("pipeline: inpainting blend after step %d: %w", i, err)
		}
	}
	hw := len(s.maskLatent)
	for k := range latents {
		if s.maskLatent[k%hw] == 0 { // (1 − m)·proper + m·latents with m ∈ {0, 1}
			latents[k] = proper[k]
		}
	}
	return latents, nil
}

// pasteOriginal copies the kept pixels of the image into imgs when PasteOriginal asked for it.
func (s *imageSource) pasteOriginal(imgs []*image.NRGBA) {
	if s == nil || !s.paste || s.mask == nil {
		return
	}
	W := s.pixels.Bounds().Dx()
	for _, img := range imgs {
		for k, repaint := range s.mask {
			if !repaint {
				o := (k/W)*img.Stride + 4*(k%W)
				i := (k/W)*s.pixels.Stride + 4*(k%W)
				copy(img.Pix[o:o+3], s.pixels.Pix[i:i+3])
			}
		}
	}
}

// encoder returns the VAE encoder, loading it on first use when the Pipeline was loaded from a
// folder.
func (p *Pipeline) encoder() (*vae.Encoder, error) {
	p.encMu.Lock()
	defer p.encMu.Unlock()
	if p.enc == nil {
		if p.loadEnc == nil {
			return nil, errors.New("pipeline: image-to-image needs the VAE encoder, and this Pipeline has none (Components.VAEEncoder)")
		}
		e, err := p.loadEnc()
		if err != nil {
			return nil, fmt.Errorf("pipeline: loading the VAE encoder: %w", err)
		}
		e.Runner().SetCache(p.cache)
		p.enc = e
	}
	return p.enc, nil
}
