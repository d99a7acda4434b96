package server

import (
	"bytes"
	"image"
	"image/png"
	"math"

	"github.com/smallsd/smallsd/pipeline"
)

// latentRGB is the web UI's "cheap approximation" of the SD 1.x VAE (sd_vae_approx.py): each
// latent pixel's four channels times this 4×3 matrix give RGB in about −1 … 1.
var latentRGB = [4][3]float32{
	{0.298, 0.207, 0.208},
	{0.187, 0.286, 0.173},
	{-0.158, 0.189, 0.264},
	{-0.184, -0.271, -0.473},
}

// previewImage returns a picture of a progress report's latents: each image of the batch at
// latent resolution (1/8 of the image's side), side by side in a grid, by the linear projection
// latentRGB. It is nil when the report has no latents or they do not have four channels.
func previewImage(pr pipeline.Progress) image.Image {
	n, c, h, w := pr.LatentShape[0], pr.LatentShape[1], pr.LatentShape[2], pr.LatentShape[3]
	if n < 1 || c != 4 || h < 1 || w < 1 || len(pr.Latents) < n*c*h*w {
		return nil
	}
	cols := int(math.Ceil(math.Sqrt(float64(n))))
	rows := (n + cols - 1) / cols
	img := image.NewNRGBA(image.Rect(0, 0, cols*w, rows*h))
	plane := h * w
	for b := range n {
		x0, y0 := (b%cols)*w, (b/cols)*h
		lat := pr.Latents[b*c*plane : (b+1)*c*plane]
		for y := range h {
			for x := range w {
				var rgb [3]float32
				for ch := range 4 {
					v := lat[ch*plane+y*w+x]
					for k := range 3 {
						rgb[k] += v * latentRGB[ch][k]
					}
				}
				o := img.PixOffset(x0+x, y0+y)
				for k := range 3 {
					img.Pix[o+k] = toByte((rgb[k] + 1) / 2)
				}
				img.Pix[o+3] = 255
			}
		}
	}
	return img
}

// toByte maps 0 … 1 to 0 … 255, clamping.
func toByte(v float32) uint8 {
	switch {
	case !(v > 0): // also NaN
		return 0
	case v >= 1:
		return 255
	}
	return uint8(v*255 + 0.5)
}

// encodePNG encodes img with the fastest compression (previews are small and short-lived).
func encodePNG(img image.Image) []byte {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil // an in-memory NRGBA always encodes
	}
	return buf.Bytes()
}
