package vae

import (
	"fmt"
	"image"
	"math"

	"gorgonia.org/tensor"
)

// ToImages turns decoded images (N×3×H×W float32 values in about [-1, 1]) into N opaque RGBA
// images the way diffusers' VaeImageProcessor.postprocess does: (x/2 + 0.5) clamped to [0, 1],
// times 255 and rounded half to even (numpy's round), all in float32.
func ToImages(decoded *tensor.Dense) ([]*image.NRGBA, error) {
	if decoded == nil {
		return nil, fmt.Errorf("vae: ToImages: nil tensor")
	}
	if decoded.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("vae: ToImages: values are %v, want float32", decoded.Dtype())
	}
	s := decoded.Shape()
	if len(s) != 4 || s[1] != 3 || s[0] < 1 || s[2] < 1 || s[3] < 1 {
		return nil, fmt.Errorf("vae: ToImages: shape %v, want N×3×H×W", s)
	}
	if decoded.IsView() || !decoded.IsNativelyAccessible() {
		m, ok := decoded.Materialize().(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("vae: ToImages: cannot read the tensor's data")
		}
		decoded = m
	}
	data := decoded.Float32s()
	n, hgt, wid := s[0], s[2], s[3]
	plane := hgt * wid
	imgs := make([]*image.NRGBA, n)
	for i := range imgs {
		img := image.NewNRGBA(image.Rect(0, 0, wid, hgt))
		src := data[i*3*plane : (i+1)*3*plane]
		for y := 0; y < hgt; y++ {
			row := img.Pix[y*img.Stride : y*img.Stride+4*wid]
			for x := 0; x < wid; x++ {
				p := y*wid + x
				row[4*x] = toByte(src[p])
				row[4*x+1] = toByte(src[plane+p])
				row[4*x+2] = toByte(src[2*plane+p])
				row[4*x+3] = 255
			}
		}
		imgs[i] = img
	}
	return imgs, nil
}

// toByte maps one decoded value to 0…255 with torch's and numpy's float32 arithmetic.
func toByte(v float32) uint8 {
	u := float32(v/2) + 0.5 // the explicit conversions keep Go from fusing operations
	if !(u > 0) {           // NaN clamps to 0 too (torch keeps NaN; uint8(NaN) is undefined there)
		u = 0
	}
	if u > 1 {
		u = 1
	}
	return uint8(math.RoundToEven(float64(float32(u * 255))))
}
