package safety

import (
	"fmt"
	"image"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

func goldenFile(t testing.TB) *golden.File {
	t.Helper()
	return golden.MustOpen(t, golden.Path("safety-golden.safetensors"))
}

// bytesOf returns a U8 reference tensor's values as bytes.
func bytesOf(ref *golden.Tensor) []uint8 {
	out := make([]uint8, len(ref.Data))
	for i, v := range ref.Data {
		out[i] = uint8(v)
	}
	return out
}

// nrgba makes an opaque image from H×W×3 bytes.
func nrgba(pix []uint8, h, w int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < h*w; i++ {
		copy(img.Pix[4*i:4*i+3], pix[3*i:3*i+3])
		img.Pix[4*i+3] = 255
	}
	return img
}

// TestPreprocessMatchesCLIPImageProcessor runs the real feature extractor config on odd-sized
// pictures (both upscaled by the bicubic resize, then cropped) and compares with transformers'
// pixel_values: exactly.
func TestPreprocessMatchesCLIPImageProcessor(t *testing.T) {
	f := goldenFile(t)
	cfg, err := LoadProcessorConfig(golden.Path("configs", "feature_extractor"))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{3, 4} {
		in := f.Must(t, fmt.Sprintf("clip_proc.%d.input", i))
		got, h, w, err := cfg.Preprocess(nrgba(bytesOf(in), in.Shape[0], in.Shape[1]))
		if err != nil {
			t.Fatal(err)
		}
		if h != 224 || w != 224 {
			t.Fatalf("clip_proc.%d: %d×%d, want 224×224", i, h, w)
		}
		golden.Check(t, fmt.Sprintf("clip_proc.%d (%dx%d)", i, in.Shape[1], in.Shape[0]), got,
			f.Must(t, fmt.Sprintf("clip_proc.%d.pixel_values", i)), 1e-6)
	}
}
