package pipeline

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"

	"github.com/smallsd/smallsd/hub"
	"github.com/smallsd/smallsd/vae"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// TAESDRepo is the Hub repository of TAESD for SD 1.x (and 2.x) in diffusers layout, for
// WithVAE and WithPreviewDecoder.
const TAESDRepo = "madebyollin/taesd"

// WithVAE decodes the final images with the VAE in path, a folder or a Hub repository id, instead
// of the model's own: an AutoencoderTiny such as TAESDRepo (TAESD: about 18 times less work
// than SD's VAE, at some cost in fine detail; see package vae), or another AutoencoderKL (a
// fine-tuned VAE, which image-to-image then encodes with too). With a TAESD, image-to-image still
// encodes with the model's VAE (diffusers 0.21.4's img2img cannot use AutoencoderTiny at all).
func WithVAE(path string) Option { return func(o *loadOptions) { o.vae = path } }

// WithPreviewDecoder decodes progress previews (Request.PreviewEvery, Pipeline.Preview) with the
// AutoencoderTiny (TAESD) in path, a folder or a Hub repository id such as TAESDRepo. Without it,
// previews are decoded with the TAESD of WithVAE if there is one, else with LinearPreview.
func WithPreviewDecoder(path string) Option { return func(o *loadOptions) { o.preview = path } }

// vaeDir finds the VAE folder path names (a folder, a Hub repository id, or a whole model whose
// vae subfolder is meant) and reads its _class_name.
func vaeDir(ctx context.Context, path string, o loadOptions) (dir, class string, err error) {
	dir = path
	if hub.IsRepoID(path) && !pathExists(path) {
		if dir, err = hub.Download(ctx, path, o.hub...); err != nil {
			return "", "", err
		}
	}
	if !pathExists(filepath.Join(dir, "config.json")) && pathExists(filepath.Join(dir, "vae")) {
		dir = filepath.Join(dir, "vae")
	}
	var named struct {
		Class string `json:"_class_name"`
	}
	if err := weights.ReadComponentConfig(dir, &named); err != nil {
		return "", "", err
	}
	return dir, named.Class, nil
}

// pathExists reports whether p exists.
func pathExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// withVAEs loads the models WithVAE and WithPreviewDecoder name into p. On failure it closes p.
func (o loadOptions) withVAEs(ctx context.Context, p *Pipeline) (*Pipeline, error) {
	err := o.loadVAEs(ctx, p)
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (o loadOptions) loadVAEs(ctx context.Context, p *Pipeline) error {
	var wopts []weights.Option
	if o.half {
		wopts = append(wopts, weights.WithHalf())
	}
	if o.vae != "" {
		dir, class, err := vaeDir(ctx, o.vae, o)
		if err != nil {
			return fmt.Errorf("pipeline: WithVAE(%q): %w", o.vae, err)
		}
		switch class {
		case "AutoencoderTiny":
			if p.tiny, err = vae.LoadTiny(dir, wopts...); err != nil {
				return fmt.Errorf("pipeline: WithVAE(%q): %w", o.vae, err)
			}
		case "AutoencoderKL", "":
			d, err := vae.LoadDecoder(dir, wopts...)
			if err != nil {
				return fmt.Errorf("pipeline: WithVAE(%q): %w", o.vae, err)
			}
			if c := d.Config(); c.LatentChannels != p.unet.Config().InChannels || c.UpscaleFactor() != p.vae.Config().UpscaleFactor() {
				d.Close()
				return fmt.Errorf("pipeline: WithVAE(%q): latent_channels %d and upscale factor %d do not fit the model's %d and %d",
					o.vae, c.LatentChannels, c.UpscaleFactor(), p.unet.Config().InChannels, p.vae.Config().UpscaleFactor())
			}
			old := p.vae
			p.vae = d
			old.Close()
			p.loadEnc = func() (*vae.Encoder, error) { return vae.LoadEncoder(dir, wopts...) }
		default:
			return fmt.Errorf("pipeline: WithVAE(%q): %s is a %s, want AutoencoderKL or AutoencoderTiny", o.vae, dir, class)
		}
	}
	if o.preview != "" {
		dir, class, err := vaeDir(ctx, o.preview, o)
		if err == nil && class != "AutoencoderTiny" {
			err = fmt.Errorf("%s is a %s, want AutoencoderTiny (TAESD)", dir, class)
		}
		if err == nil {
			p.preview, err = vae.LoadTiny(dir, wopts...)
		}
		if err != nil {
			return fmt.Errorf("pipeline: WithPreviewDecoder(%q): %w", o.preview, err)
		}
	}
	return p.checkTiny()
}

// checkTiny checks that the TAESD models fit the UNet's latents and the VAE's image size.
func (p *Pipeline) checkTiny() error {
	lat, f := p.unet.Config().InChannels, p.vae.Config().UpscaleFactor()
	for _, t := range []*vae.Tiny{p.tiny, p.preview} {
		if t == nil {
			continue
		}
		if c := t.Config(); c.LatentChannels != lat || c.UpscaleFactor() != f {
			return fmt.Errorf("pipeline: the TAESD's latent_channels and upscale factor are %d and %d, the model's %d and %d",
				c.LatentChannels, c.UpscaleFactor(), lat, f)
		}
	}
	return nil
}

// closeTiny closes the TAESD models.
func (p *Pipeline) closeTiny() error {
	var errs []error
	for _, t := range []*vae.Tiny{p.tiny, p.preview} {
		if t != nil {
			errs = append(errs, t.Close())
		}
	}
	return errors.Join(errs...)
}

// decodeTiny is decode with the TAESD of WithVAE: latents / scaling_factor (1), its decoder,
// then diffusers' postprocess.
func (p *Pipeline) decodeTiny(ctx context.Context, t *vae.Tiny, latents []float32, shape [4]int) ([]*image.NRGBA, error) {
	sf := float32(t.Config().ScalingFactor)
	z := make([]float32, len(latents))
	for i, v := range latents {
		z[i] = v / sf
	}
	x, err := t.Decode(ctx, tensor.New(tensor.WithShape(shape[:]...), tensor.WithBacking(z)))
	if err != nil {
		return nil, fmt.Errorf("pipeline: TAESD decoder: %w", err)
	}
	return vae.ToImages(x)
}

// previewDecoder is the TAESD previews are decoded with, nil for none.
func (p *Pipeline) previewDecoder() *vae.Tiny {
	if p.preview != nil {
		return p.preview
	}
	return p.tiny
}

// Preview makes pictures of latents (NCHW of shape, such as Progress.Latents), one per image:
// decoded with TAESD when the Pipeline has one (WithPreviewDecoder, or WithVAE with a TAESD),
// full size, else with LinearPreview, at the latents' size. It is what Request.PreviewEvery
// puts in Progress.Previews; a server can call it when a client asks instead.
func (p *Pipeline) Preview(ctx context.Context, latents []float32, shape [4]int) ([]*image.NRGBA, error) {
	if t := p.previewDecoder(); t != nil {
		if len(latents) != shape[0]*shape[1]*shape[2]*shape[3] {
			return nil, fmt.Errorf("pipeline: Preview: %d latents for shape %v", len(latents), shape)
		}
		return p.decodeTiny(ctx, t, latents, shape)
	}
	return LinearPreview(latents, shape)
}

// stepPreviews returns Progress.Previews for step of total: r.PreviewEvery's steps and the last
// one, none for step 0 (the noise). A failed preview is left out: previews never fail a
// generation.
func (p *Pipeline) stepPreviews(ctx context.Context, r Request, step, total int, latents []float32, shape [4]int) []*image.NRGBA {
	if r.PreviewEvery <= 0 || step == 0 || (step%r.PreviewEvery != 0 && step != total) {
		return nil
	}
	imgs, err := p.Preview(ctx, latents, shape)
	if err != nil {
		return nil
	}
	return imgs
}

// latentRGB are the coefficients of the linear latent → RGB map of SD 1.x latents (rows: latent
// channels; columns: R, G, B), the "Approx cheap" previews of the AUTOMATIC1111 web UI.
var latentRGB = [4][3]float32{
	{0.298, 0.207, 0.208},
	{0.187, 0.286, 0.173},
	{-0.158, 0.189, 0.264},
	{-0.184, -0.271, -0.473},
}

// LinearPreview makes a picture of each image's latents (NCHW of shape, 4 channels: SD 1.x
// latents as the denoising loop holds them) by a fixed linear map of each latent pixel to RGB,
// one pixel per latent (64×64 for a 512×512 image): a rough impression of the colours and
// layout at almost no cost (16 multiply-adds per pixel).
func LinearPreview(latents []float32, shape [4]int) ([]*image.NRGBA, error) {
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	if c != len(latentRGB) || n < 1 || h < 1 || w < 1 || len(latents) != n*c*h*w {
		return nil, fmt.Errorf("pipeline: LinearPreview: %d latents of shape %v, want N×%d×h×w", len(latents), shape, len(latentRGB))
	}
	plane := h * w
	imgs := make([]*image.NRGBA, n)
	for i := range imgs {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		src := latents[i*c*plane : (i+1)*c*plane]
		for p := range plane {
			for k := range 3 {
				var v float32
				for ch := range c {
					v += src[ch*plane+p] * latentRGB[ch][k]
				}
				img.Pix[4*p+k] = uint8(math.Round(float64(255 * min(1, max(0, v/2+0.5)))))
			}
			img.Pix[4*p+3] = 255
		}
		imgs[i] = img
	}
	return imgs, nil
}
