package golden

import (
	"image"
	"testing"
)

// CheckImageU8 compares an 8-bit image with a reference image_u8 tensor (H×W×3, RGB) and
// requires every value within one level of it (the rounding of the last bit: the project's
// promise for images) and every pixel opaque. It logs how many values are exact, one level off
// and further, in the form "label: max abs error D levels (limit 1); N values: …", and returns
// the largest difference.
func CheckImageU8(tb testing.TB, label string, img image.Image, ref *Tensor) int {
	tb.Helper()
	if len(ref.Shape) != 3 || ref.Shape[2] != 3 {
		tb.Fatalf("%s: reference %s has shape %v, want H×W×3", label, ref.Name, ref.Shape)
	}
	h, w := ref.Shape[0], ref.Shape[1]
	b := img.Bounds()
	if b.Dx() != w || b.Dy() != h {
		tb.Fatalf("%s: image is %dx%d, want %dx%d", label, b.Dx(), b.Dy(), w, h)
	}
	var exact, one, off, maxd int
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			if a != 0xffff {
				tb.Fatalf("%s: pixel (%d,%d) is not opaque (alpha %d)", label, x, y, a>>8)
			}
			for c, v := range [3]uint32{r >> 8, g >> 8, bl >> 8} {
				d := int(v) - int(ref.Data[(y*w+x)*3+c])
				if d < 0 {
					d = -d
				}
				maxd = max(maxd, d)
				switch {
				case d == 0:
					exact++
				case d == 1:
					one++
				default:
					off++
				}
			}
		}
	}
	total := exact + one + off
	tb.Logf("%s: max abs error %d levels (limit 1); %d values: %d exact, %d one level off, %d further", label, maxd, total, exact, one, off)
	if off > 0 {
		tb.Errorf("%s: %d of %d values more than one level off (max %d), want none", label, off, total, maxd)
	}
	return maxd
}
