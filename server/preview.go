package server

import (
	"bytes"
	"image"
	"image/draw"
	"image/png"
	"math"
)

// DefaultPreviewEvery is how often (in steps) a generation makes previews unless
// WithPreviewEvery says otherwise.
const DefaultPreviewEvery = 2

// grid puts the previews of a batch side by side (⌈√n⌉ columns); one preview is returned as it is.
func grid(imgs []*image.NRGBA) image.Image {
	if len(imgs) == 0 {
		return nil
	}
	if len(imgs) == 1 {
		return imgs[0]
	}
	w, h := imgs[0].Bounds().Dx(), imgs[0].Bounds().Dy()
	cols := int(math.Ceil(math.Sqrt(float64(len(imgs)))))
	rows := (len(imgs) + cols - 1) / cols
	out := image.NewNRGBA(image.Rect(0, 0, cols*w, rows*h))
	for i, img := range imgs {
		at := image.Pt((i%cols)*w, (i/cols)*h)
		draw.Draw(out, image.Rectangle{at, at.Add(image.Pt(w, h))}, img, img.Bounds().Min, draw.Src)
	}
	return out
}

// encodePNG encodes img with the fastest compression (previews are short-lived).
func encodePNG(img image.Image) []byte {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil // an in-memory NRGBA always encodes
	}
	return buf.Bytes()
}
