package pilresize

import (
	"math"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// TestBicubicPIL compares with PIL's Image.resize(..., BICUBIC) on two seeded RGB pictures
// (testdata/pil-resize.safetensors, from shared/golden/wave2): byte for byte.
func TestBicubicPIL(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("pil-resize.safetensors"))
	for _, c := range []string{"resize.6", "resize.7"} {
		in, want := f.Must(t, c+".input"), f.Must(t, c+".output")
		src := make([]uint8, len(in.Data))
		for i, v := range in.Data {
			src[i] = uint8(v)
		}
		got, err := Resize(src, in.Shape[1], in.Shape[0], 3, want.Shape[1], want.Shape[0], Bicubic)
		if err != nil {
			t.Fatal(err)
		}
		diff := 0
		for i, v := range want.Data {
			if float64(got[i]) != v {
				diff++
			}
		}
		t.Logf("%s: %dx%d → %dx%d, %d of %d bytes differ from PIL's", c, in.Shape[1], in.Shape[0], want.Shape[1], want.Shape[0], diff, len(got))
		if diff != 0 {
			t.Errorf("%s: %d bytes differ from PIL's", c, diff)
		}
	}
}

// TestLanczosFilter checks Pillow's lanczos_filter at points worked out by hand:
// sinc(x)·sinc(x/3), 0 outside [−3, 3).
func TestLanczosFilter(t *testing.T) {
	for _, c := range []struct{ x, want float64 }{
		{0, 1}, {1, 0}, {-2, 0}, {3, 0}, {-3, 0}, {4, 0},
		{0.5, (1 / (math.Pi / 2)) * (0.5 / (math.Pi / 6))}, // sin(π/2)/(π/2) · sin(π/6)/(π/6)
		{1.5, (-1 / (1.5 * math.Pi)) * (1 / (math.Pi / 2))},
	} {
		if got := lanczos(c.x); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("lanczos(%v) = %v, want %v", c.x, got, c.want)
		}
	}
}

// TestResizeProperties: a constant picture stays constant with both filters, the same size is
// returned as it is, and bad sizes are errors naming them.
func TestResizeProperties(t *testing.T) {
	src := make([]uint8, 37*23*3)
	for i := range src {
		src[i] = []uint8{200, 17, 99}[i%3]
	}
	for _, f := range []Filter{Bicubic, Lanczos} {
		for _, size := range [][2]int{{16, 8}, {96, 64}, {37, 50}, {1, 1}} {
			got, err := Resize(src, 37, 23, 3, size[0], size[1], f)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range got {
				if v != src[i%3] {
					t.Fatalf("%v to %v: byte %d is %d, want %d", f, size, i, v, src[i%3])
				}
			}
		}
		same, _ := Resize(src, 37, 23, 3, 37, 23, f)
		if &same[0] != &src[0] {
			t.Errorf("%v: a resize to the same size copied the picture", f)
		}
	}
	if _, err := Resize(src, 37, 23, 3, 0, 5, Lanczos); err == nil || !strings.Contains(err.Error(), "to 0x5") {
		t.Errorf("error %v, want one naming 0x5", err)
	}
	if _, err := Resize(src[:10], 37, 23, 3, 5, 5, Lanczos); err == nil || !strings.Contains(err.Error(), "10 bytes") {
		t.Errorf("error %v, want one naming the 10 bytes", err)
	}
}

// TestLanczosShrink: halving a picture with Lanczos weighs each output pixel's neighbourhood
// symmetrically: a picture symmetric about its centre stays symmetric.
func TestLanczosShrink(t *testing.T) {
	const w, h = 40, 30
	src := make([]uint8, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := float64(x)-float64(w-1)/2, float64(y)-float64(h-1)/2
			src[y*w+x] = uint8(128 + 120*math.Cos(dx*dx/50+dy*dy/30))
		}
	}
	got, err := Resize(src, w, h, 1, w/2, h/2, Lanczos)
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < h/2; y++ {
		for x := 0; x < w/2; x++ {
			if a, b := got[y*w/2+x], got[(h/2-1-y)*w/2+(w/2-1-x)]; a != b {
				t.Fatalf("(%d,%d) = %d but its mirror image %d", x, y, a, b)
			}
		}
	}
}
