package server

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	_ "image/jpeg" // init images may be JPEG
	"net/http"
	"strings"

	"github.com/smallsd/smallsd/pipeline"
	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // or WebP
)

// maxImageSide bounds the sides of an uploaded image, checked before it is decoded.
const maxImageSide = 8192

// img2imgRequest is the body of POST /sdapi/v1/img2img: the txt2img fields plus the web UI's
// StableDiffusionImg2ImgProcessingAPI image fields that smallsd honours. mask_blur,
// inpainting_fill, inpaint_full_res and inpaint_full_res_padding are accepted and ignored (the
// pipeline inpaints as diffusers does: the known region's latents are put back after every step,
// and its pixels pasted over the result).
type img2imgRequest struct {
	txt2imgRequest
	InitImages           []string `json:"init_images"`
	DenoisingStrength    float64  `json:"denoising_strength"`
	Mask                 *string  `json:"mask"`
	ResizeMode           int      `json:"resize_mode"`
	InpaintingMaskInvert int      `json:"inpainting_mask_invert"`
}

// decodeImg2img reads and checks an img2img body. A missing width or height is the init image's
// (rounded down to a multiple of 8); an init image or mask of another size is resized to the
// requested one (resize_mode 0, the web UI's "Just resize").
func (s *Server) decodeImg2img(r *http.Request) (genParams, error) {
	t := img2imgRequest{
		txt2imgRequest: txt2imgRequest{Seed: -1, Steps: pipeline.DefaultSteps, CFGScale: pipeline.DefaultGuidance,
			BatchSize: 1, NIter: 1, SendImages: true},
		DenoisingStrength: pipeline.DefaultStrength,
	}
	if err := decodeJSON(r.Body, &t); err != nil {
		return genParams{}, err
	}
	if len(t.InitImages) != 1 {
		return genParams{}, badField("init_images", "%d images; want one base64-encoded image", len(t.InitImages))
	}
	if !(t.DenoisingStrength > 0 && t.DenoisingStrength <= 1) {
		return genParams{}, badField("denoising_strength", "%v is out of range; want (0, 1]", t.DenoisingStrength)
	}
	init, err := decodeImage(t.InitImages[0], "init_images")
	if err != nil {
		return genParams{}, err
	}
	b := init.Bounds()
	if t.Width == 0 {
		t.Width = b.Dx() - b.Dx()%8
	}
	if t.Height == 0 {
		t.Height = b.Dy() - b.Dy()%8
	}
	base := pipeline.Request{Strength: t.DenoisingStrength}
	resize := func(img image.Image) (image.Image, error) {
		if img.Bounds().Dx() == t.Width && img.Bounds().Dy() == t.Height || t.Width < 1 || t.Height < 1 ||
			t.Width > s.limits.MaxSide || t.Height > s.limits.MaxSide {
			return img, nil // the size checks name the bad width or height
		}
		if t.ResizeMode != 0 {
			return nil, badField("resize_mode", "%d is not supported; want 0 (just resize) or an image of the requested size", t.ResizeMode)
		}
		dst := image.NewNRGBA(image.Rect(0, 0, t.Width, t.Height))
		draw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
		return dst, nil
	}
	if base.Init, err = resize(init); err != nil {
		return genParams{}, err
	}
	if t.Mask != nil && *t.Mask != "" {
		mask, err := decodeImage(*t.Mask, "mask")
		if err != nil {
			return genParams{}, err
		}
		if t.InpaintingMaskInvert != 0 {
			mask = invert(mask)
		}
		if base.Mask, err = resize(mask); err != nil {
			return genParams{}, err
		}
		base.PasteOriginal = true // the web UI overlays the original outside the mask
	}
	return s.check(t.txt2imgRequest, base)
}

// decodeImage decodes a base64 PNG, JPEG or WebP image, with or without a data: URL prefix.
func decodeImage(s, field string) (image.Image, error) {
	if strings.HasPrefix(s, "data:") {
		if i := strings.Index(s, ","); i >= 0 {
			s = s[i+1:]
		}
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, badField(field, "not base64: %v", err)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, badField(field, "not a PNG, JPEG or WebP image: %v", err)
	}
	if cfg.Width > maxImageSide || cfg.Height > maxImageSide {
		return nil, badField(field, "the image is %dx%d pixels; want at most %d on a side", cfg.Width, cfg.Height, maxImageSide)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, badField(field, "bad image: %v", err)
	}
	return img, nil
}

// invert returns the negative of a mask, as gray levels.
func invert(m image.Image) image.Image {
	b := m.Bounds()
	out := image.NewGray(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.SetGray(x, y, color.Gray{Y: 255 - color.GrayModel.Convert(m.At(x, y)).(color.Gray).Y})
		}
	}
	return out
}

func (s *Server) handleImg2img(w http.ResponseWriter, r *http.Request) {
	gp, err := s.decodeImg2img(r)
	if err != nil {
		writeRequestError(w, err)
		return
	}
	s.respond(w, r, gp)
}
