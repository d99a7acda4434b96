package vae

import (
	"context"
	"math"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"gorgonia.org/tensor"
)

var e2eCases = []string{"pndm", "ddim", "rect_nocfg"}

// TestToImages feeds the reference's float images back through ToImages: image = (x/2+0.5)
// clamped, so x = (image-0.5)·2 reproduces it (up to a rounding in the last bit).
func TestToImages(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	for _, c := range e2eCases {
		img := f.Must(t, "e2e."+c+".image")
		h, w := img.Shape[0], img.Shape[1]
		x := make([]float32, 3*h*w)
		for i := 0; i < h*w; i++ {
			for ch := 0; ch < 3; ch++ {
				x[ch*h*w+i] = (float32(img.Data[i*3+ch]) - 0.5) * 2
			}
		}
		imgs, err := ToImages(tensor.New(tensor.WithShape(1, 3, h, w), tensor.WithBacking(x)))
		if err != nil {
			t.Fatal(err)
		}
		golden.CheckImageU8(t, "e2e."+c+".image_u8 from image", imgs[0], f.Must(t, "e2e."+c+".image_u8"))
	}
}

// TestDecodeToImages runs the pipeline's last stage on the reference's final latents:
// decode(latents / scaling_factor), then ToImages, against image_u8.
func TestDecodeToImages(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	d := loadTiny(t, "tiny-sd")
	sf := float32(d.Config().ScalingFactor)
	for _, c := range e2eCases {
		steps := f.Must(t, "e2e."+c+".latents_steps")
		shape := steps.Shape[1:]
		per := shape[0] * shape[1] * shape[2] * shape[3]
		last := steps.F32()[len(steps.Data)-per:]
		for i := range last {
			last[i] /= sf
		}
		x, err := d.Decode(context.Background(), tensor.New(tensor.WithShape(shape...), tensor.WithBacking(last)))
		if err != nil {
			t.Fatal(err)
		}
		imgs, err := ToImages(x)
		if err != nil {
			t.Fatal(err)
		}
		// The float image too, as (x/2+0.5) clamped, in HWC order.
		ref := f.Must(t, "e2e."+c+".image")
		h, w := ref.Shape[0], ref.Shape[1]
		hwc := make([]float32, 3*h*w)
		xs := f32(x)
		for i := 0; i < h*w; i++ {
			for ch := 0; ch < 3; ch++ {
				hwc[i*3+ch] = float32(math.Min(1, math.Max(0, float64(xs[ch*h*w+i]/2+0.5))))
			}
		}
		golden.Check(t, "e2e."+c+".image", hwc, ref, 2e-5) // 1.5e-6 measured
		golden.CheckImageU8(t, "e2e."+c+".image_u8 from latents", imgs[0], f.Must(t, "e2e."+c+".image_u8"))
	}
}

func TestToImagesRounding(t *testing.T) {
	// A tie below: u·255 = 126.5 exactly in float32 must round to 126 (numpy rounds half to
	// even), where rounding half away from zero would give 127. x = 2(u-0.5) is exact for
	// u ∈ [0.25, 1], so x/2+0.5 gives u back.
	u := float32(126.5 / 255)
	if float32(u*255) != 126.5 {
		t.Fatalf("premise: float32(%v·255) = %v, not 126.5", u, float32(u*255))
	}
	cases := []struct {
		x    float32
		want uint8
	}{
		{-1, 0}, {-3, 0}, {1, 255}, {7, 255},
		{0, 128},   // 127.5 → 128 (even)
		{-0.5, 64}, // 63.75
		{0.5, 191}, // 191.25
		{2 * (u - 0.5), 126},
		{float32(math.NaN()), 0},
	}
	x := make([]float32, 3*len(cases))
	for i, c := range cases {
		x[i], x[len(cases)+i], x[2*len(cases)+i] = c.x, c.x, c.x
	}
	imgs, err := ToImages(tensor.New(tensor.WithShape(1, 3, 1, len(cases)), tensor.WithBacking(x)))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		for ch := 0; ch < 3; ch++ {
			if got := imgs[0].Pix[4*i+ch]; got != c.want {
				t.Errorf("x=%v channel %d: got %d, want %d", c.x, ch, got, c.want)
			}
		}
	}
}

func TestToImagesErrors(t *testing.T) {
	for _, x := range []*tensor.Dense{
		nil,
		tensor.New(tensor.WithShape(1, 4, 2, 2), tensor.Of(tensor.Float32)),
		tensor.New(tensor.WithShape(3, 2, 2), tensor.Of(tensor.Float32)),
		tensor.New(tensor.WithShape(1, 3, 2, 2), tensor.Of(tensor.Float64)),
	} {
		if _, err := ToImages(x); err == nil {
			t.Errorf("ToImages(%v) succeeded", x)
		} else {
			t.Logf("%v", err)
		}
	}
}
