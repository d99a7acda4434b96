package safety

import (
	"context"
	"image"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/closetest"
	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// tol is about ten times the largest error measured against the reference, relative to
// max(1, max|ref|), on the AVX-512 and AVX2 paths (pooled, image_embeds: 4.9e-7).
const tol = 5e-6

func loadTiny(t testing.TB) *Checker {
	t.Helper()
	c, err := Load(golden.Path("tiny-sd-safety", "safety_checker"), golden.Path("tiny-sd-safety", "feature_extractor"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// e2eImages are the three 8-bit pipeline images the reference ran the checker on.
func e2eImages(t testing.TB) []*image.NRGBA {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	var out []*image.NRGBA
	for _, name := range []string{"e2e.pndm", "e2e.ddim", "e2e.rect_nocfg"} {
		ref := f.Must(t, name+".image_u8")
		out = append(out, nrgba(bytesOf(ref), ref.Shape[0], ref.Shape[1]))
	}
	return out
}

// TestGoldenTiny checks every stage against diffusers' StableDiffusionSafetyChecker on the tiny
// checker: pixel_values, the pooled output, image_embeds, the flags and the returned images.
func TestGoldenTiny(t *testing.T) {
	ctx := context.Background()
	f := goldenFile(t)
	c := loadTiny(t)
	imgs := e2eImages(t)

	var pixels []float32
	for _, img := range imgs {
		x, err := c.Preprocess(img)
		if err != nil {
			t.Fatal(err)
		}
		pixels = append(pixels, x.Float32s()...)
	}
	golden.Check(t, "safety.pixel_values", pixels, f.Must(t, "safety.pixel_values"), 1e-6) // exact here

	// The reference embeds the three images as one batch; so does this (B = 3), and Check
	// below runs them one at a time.
	x := tensor.New(tensor.WithShape(3, 3, 32, 32), tensor.WithBacking(pixels))
	pooled, embeds, err := c.Embed(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "safety.pooled", pooled.Float32s(), f.Must(t, "safety.pooled"), tol)
	golden.Check(t, "safety.image_embeds", embeds.Float32s(), f.Must(t, "safety.image_embeds"), tol)

	flags := f.Must(t, "safety.flags").Ints()
	res, err := c.Filter(ctx, imgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		t.Logf("image %d: %v", i, r)
		if r.NSFW != (flags[i] == 1) {
			t.Errorf("image %d: NSFW %v, reference flag %d", i, r.NSFW, flags[i])
		}
	}
	if len(res[1].SpecialCare) == 0 {
		t.Errorf("image 1 should trip a special-care concept (it is flagged only through the adjustment)")
	}
	// Returned images: the first two as the reference returns them (float, HWC, 0…1), the third
	// unchanged.
	want := f.Must(t, "safety.out_images_01")
	n := want.Shape[1] * want.Shape[2] * 3
	for i := 0; i < 2; i++ {
		img := imgs[i]
		for p := 0; p < n/3; p++ {
			for ch := 0; ch < 3; ch++ {
				if got, w := float64(img.Pix[4*p+ch])/255, want.Data[i*n+3*p+ch]; got != w {
					t.Fatalf("returned image %d, pixel %d, channel %d: %v, want %v", i, p, ch, got, w)
				}
			}
			if img.Pix[4*p+3] != 255 {
				t.Fatalf("returned image %d is not opaque", i)
			}
		}
	}
	orig := e2eImages(t)[2]
	if string(orig.Pix) != string(imgs[2].Pix) {
		t.Errorf("the unflagged image was changed")
	}
}

// With half weights (weights.WithHalf, as pipeline.WithHalfWeights loads it) the checker agrees
// with the reference up to the rounding of its matrices to fp16, and gives the same flags.
func TestHalfWeights(t *testing.T) {
	c, err := Load(golden.Path("tiny-sd-safety", "safety_checker"), golden.Path("tiny-sd-safety", "feature_extractor"), weights.WithHalf())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := goldenFile(t)
	x := tensor.New(tensor.WithShape(3, 3, 32, 32), tensor.WithBacking(f.Must(t, "safety.pixel_values").F32()))
	_, embeds, err := c.Embed(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "safety.image_embeds (half weights)", embeds.Float32s(), f.Must(t, "safety.image_embeds"), 1e-2)
	flags := f.Must(t, "safety.flags").Ints()
	for i := range 3 {
		r, err := c.Judge(embeds.Float32s()[i*16 : (i+1)*16])
		if err != nil {
			t.Fatal(err)
		}
		if r.NSFW != (flags[i] == 1) {
			t.Errorf("image %d: NSFW %v with half weights, reference flag %d", i, r.NSFW, flags[i])
		}
	}
}

// Bad inputs are errors.
func TestBadInput(t *testing.T) {
	c := loadTiny(t)
	ctx := context.Background()
	if _, _, err := c.Embed(ctx, tensor.New(tensor.WithShape(1, 3, 16, 32), tensor.WithBacking(make([]float32, 3*16*32)))); err == nil {
		t.Error("wrong pixel size accepted")
	}
	if _, err := c.Judge(make([]float32, 5)); err == nil {
		t.Error("wrong embedding length accepted")
	}
	if _, err := c.Check(ctx, []image.Image{image.NewNRGBA(image.Rect(0, 0, 0, 0))}); err == nil {
		t.Error("empty image accepted")
	}
}

// TestLifecycleUseAfterClose: every call after Close returns ErrClosed.
func TestLifecycleUseAfterClose(t *testing.T) {
	c := loadTiny(t)
	ctx := context.Background()
	imgs := e2eImages(t)
	x, err := c.Preprocess(imgs[0])
	if err != nil {
		t.Fatal(err)
	}
	closetest.UseAfterClose(t, c.Close, ErrClosed,
		closetest.Call{Name: "Check", Do: func() error { _, err := c.Check(ctx, []image.Image{imgs[0]}); return err }},
		closetest.Call{Name: "Filter", Do: func() error { _, err := c.Filter(ctx, imgs[:1]); return err }},
		closetest.Call{Name: "Embed", Do: func() error { _, _, err := c.Embed(ctx, x); return err }})
}

// TestLifecycleCloseDuringCheck: Close while checks run waits for them; each returns a result or
// ErrClosed.
func TestLifecycleCloseDuringCheck(t *testing.T) {
	c := loadTiny(t)
	imgs := e2eImages(t)
	closetest.CloseDuringCalls(t, 4, c.Close, ErrClosed, func(g int) error {
		_, err := c.Check(context.Background(), []image.Image{imgs[g%len(imgs)]})
		return err
	})
}

// tinyTensors returns the tiny checker's tensors, to edit.
func tinyTensors(t *testing.T) map[string]*tensor.Dense {
	s, err := weights.Open(golden.Path("tiny-sd-safety", "safety_checker"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := map[string]*tensor.Dense{}
	for _, name := range s.Names() {
		v, err := s.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		m[name] = v.Clone().(*tensor.Dense)
	}
	return m
}

// A position_ids buffer is ignored; missing, mis-shaped and unused tensors are errors naming them.
func TestCheckpointErrors(t *testing.T) {
	cfg, err := LoadConfig(golden.Path("tiny-sd-safety", "safety_checker"))
	if err != nil {
		t.Fatal(err)
	}
	proc, err := LoadProcessorConfig(golden.Path("tiny-sd-safety", "feature_extractor"))
	if err != nil {
		t.Fatal(err)
	}
	build := func(edit func(m map[string]*tensor.Dense)) error {
		m := tinyTensors(t)
		edit(m)
		s, err := weights.FromTensors("test", m)
		if err != nil {
			t.Fatal(err)
		}
		c, err := fromStore(cfg, proc, s)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := build(func(m map[string]*tensor.Dense) {
		m[positionIDs] = tensor.New(tensor.WithShape(1, 17), tensor.WithBacking(make([]float32, 17)))
	}); err != nil {
		t.Errorf("position_ids: %v", err)
	}
	for name, c := range map[string]struct {
		edit func(m map[string]*tensor.Dense)
	}{
		"special_care_embeds_weights": {func(m map[string]*tensor.Dense) { delete(m, "special_care_embeds_weights") }},
		"concept_embeds": {func(m map[string]*tensor.Dense) {
			m["concept_embeds"] = tensor.New(tensor.WithShape(17, 15), tensor.WithBacking(make([]float32, 17*15)))
		}},
		"visual_projection.weight": {func(m map[string]*tensor.Dense) {
			m["visual_projection.weight"] = tensor.New(tensor.WithShape(16, 31), tensor.WithBacking(make([]float32, 16*31)))
		}},
		"text_projection.weight": {func(m map[string]*tensor.Dense) {
			m["text_projection.weight"] = tensor.New(tensor.WithShape(2, 2), tensor.WithBacking(make([]float32, 4)))
		}},
	} {
		err := build(c.edit)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}
