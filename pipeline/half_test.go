package pipeline

import (
	"context"
	"math"
	"testing"

	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/unet"
	"github.com/smallsd/smallsd/vae"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// modelTols are the tolerances (× max(1, max|ref|) per element) of each tiny model's output with
// float32 and with half weights: about 10× the largest error measured on the AVX-512 and AVX2
// paths (float32: 3.5e-7, 1.3e-6, 2.5e-6; half: 4.4e-4, 1.1e-3, 1.2e-3 — rounding the weights to
// fp16, relative error ≤ 2^-11 each, moves the outputs by about 1e-3 of their range).
var modelTols = map[string][2]float64{"text": {4e-6, 5e-3}, "unet": {2e-5, 1e-2}, "vae": {3e-5, 1e-2}}

func denseRef(ref *golden.Tensor) *tensor.Dense {
	return tensor.New(tensor.WithShape(ref.Shape...), tensor.WithBacking(ref.F32()))
}

// openComponent opens one tiny-sd component's weights with opts; closed at cleanup.
func openComponent(t *testing.T, name string, opts ...weights.Option) (dir string, s *weights.Store) {
	t.Helper()
	dir = golden.Path("tiny-sd", name)
	s, err := weights.Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return dir, s
}

// TestHalfWeightsModels runs the tiny text encoder, UNet and VAE decoder with half weights
// (weights.WithHalf) against the references, and checks the weight memory they hold is about
// half of what the float32 models hold.
func TestHalfWeightsModels(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	ctx := context.Background()
	var held [2]int64 // weight bytes held: fp32, half
	for mi, half := range []bool{false, true} {
		var opts []weights.Option
		mode := "fp32"
		if half {
			opts, mode = []weights.Option{weights.WithHalf()}, "half"
		}
		var bytes int64

		dir, s := openComponent(t, "text_encoder", opts...)
		if s.PreferHalf() != half {
			t.Fatalf("PreferHalf = %v with %s options", s.PreferHalf(), mode)
		}
		ccfg, err := clip.LoadConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		tm, err := clip.New(ccfg, s.View())
		if err != nil {
			t.Fatal(err)
		}
		ids := f.Must(t, "text.input_ids").Ints()
		rows := make([][]int, 0, len(ids)/ccfg.MaxPositionEmbeddings)
		for i := 0; i < len(ids); i += ccfg.MaxPositionEmbeddings {
			rows = append(rows, ids[i:i+ccfg.MaxPositionEmbeddings])
		}
		text, err := tm.Encode(ctx, rows)
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, mode+" text.last_hidden_state", text.Float32s(), f.Must(t, "text.last_hidden_state"), modelTols["text"][mi])
		bytes += s.LoadedBytes()

		dir, s = openComponent(t, "unet", opts...)
		ucfg, err := unet.LoadConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		um, err := unet.New(ucfg, s.View())
		if err != nil {
			t.Fatal(err)
		}
		hidden := denseRef(f.Must(t, "text.last_hidden_state"))
		for _, c := range []string{"sq", "rect"} {
			out, err := um.Forward(ctx, denseRef(f.Must(t, "unet."+c+".sample")), 981, hidden)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, mode+" unet."+c+".t981.out", out.Float32s(), f.Must(t, "unet."+c+".t981.out"), modelTols["unet"][mi])
		}
		bytes += s.LoadedBytes()

		dir, s = openComponent(t, "vae", opts...)
		vcfg, err := vae.LoadConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		vd, err := vae.NewDecoder(vcfg, s.View())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"sq", "rect"} {
			out, err := vd.Decode(ctx, denseRef(f.Must(t, "vae."+c+".latents")))
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, mode+" vae."+c+".decoded", out.Float32s(), f.Must(t, "vae."+c+".decoded"), modelTols["vae"][mi])
		}
		bytes += s.LoadedBytes()

		t.Logf("%s: weights held by the three stores: %d bytes", mode, bytes)
		held[mi] = bytes
	}
	r := float64(held[1]) / float64(held[0])
	t.Logf("half/fp32 weight bytes: %d / %d = %.3f", held[1], held[0], r)
	// Norms, biases and embeddings stay float32: a little over half, never more than 0.6.
	if r <= 0.5 || r > 0.6 {
		t.Errorf("half weights hold %.3f of the float32 bytes, want just over 0.5", r)
	}
}

// TestHalfWeightsFP16Variant checks that with fp16 files, half weights change nothing but float32
// rounding: the stored halves are used as they are, and the kernels widen them exactly as
// loading does (only the blocking of the sums may differ).
func TestHalfWeightsFP16Variant(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	ids := f.Must(t, "text.input_ids").Ints()
	var outs [2][]float32
	for i, half := range []bool{false, true} {
		opts := []weights.Option{weights.WithVariant("fp16")}
		if half {
			opts = append(opts, weights.WithHalf())
		}
		m, err := clip.Load(golden.Path("tiny-sd", "text_encoder"), opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		n := m.Config().MaxPositionEmbeddings
		var rows [][]int
		for j := 0; j < len(ids); j += n {
			rows = append(rows, ids[j:j+n])
		}
		out, err := m.Encode(context.Background(), rows)
		if err != nil {
			t.Fatal(err)
		}
		outs[i] = out.Float32s()
	}
	diff := 0
	for i, v := range outs[1] {
		if v != outs[0][i] {
			diff++
		}
	}
	t.Logf("fp16 variant: half weights vs widened weights differ in %d of %d values", diff, len(outs[0]))
	ref := &golden.Tensor{Name: "widened fp16", Shape: []int{len(outs[0])}, Data: make([]float64, len(outs[0]))}
	for i, v := range outs[0] {
		ref.Data[i] = float64(v)
	}
	golden.Check(t, "fp16 variant: half weights vs widened", outs[1], ref, 1e-5)
}

// TestHalfWeightsEndToEnd generates the e2e cases with WithHalfWeights and compares with the
// float32 references under a looser, stated tolerance for the latents: 5e-3 × max(1, max|ref|) at
// every step (measured: 7e-4 of the range); the 8-bit image must still have ≥ 99.9% of values
// within one level, as in float32.
func TestHalfWeightsEndToEnd(t *testing.T) {
	p, err := Load(golden.Path("tiny-sd"), WithHalfWeights())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ref := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	for _, name := range []string{"e2e.pndm", "e2e.rect_nocfg"} {
		c := loadCase(t, name)
		init := ref.Must(t, name+".latents_init")
		steps := ref.Must(t, name+".latents_steps")
		per := len(init.Data)
		var got [][]float32
		req := c.request(t)
		req.Progress = func(pr Progress) { got = append(got, pr.Latents) }
		res, err := p.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, name+".latents_init", got[0], init, 1e-6)
		worst := 0.0
		for i := 1; i < len(got); i++ {
			s := &golden.Tensor{Name: steps.Name, Shape: init.Shape, Data: steps.Data[(i-1)*per : i*per]}
			worst = math.Max(worst, golden.Check(t, name+".latents_steps["+itoa(i-1)+"]", got[i], s, 5e-3))
		}
		t.Logf("%s (half weights): largest latent error over %d steps %.3g", name, len(got)-1, worst)
		golden.CheckImageU8(t, name+".image_u8 (half weights)", res.Images[0], ref.Must(t, name+".image_u8"))
	}
}
