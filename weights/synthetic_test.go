package weights

import (
	"math"
	"strings"
	"testing"
)

func TestSyntheticCheckTensors(t *testing.T) {
	ref := mustOpenFile(t, testdata("fullsize-golden.safetensors"))
	syn := NewSynthetic()
	cases := []struct {
		check, name string
		shape       []int
	}{
		{"clip.check.token_embedding_first8", "text_model.embeddings.token_embedding.weight", []int{49408, 768}},
		{"unet.check.conv_in_weight_first8", "conv_in.weight", []int{320, 4, 3, 3}},
	}
	for _, c := range cases {
		want, err := ref.Tensor(c.check, 8)
		if err != nil {
			t.Fatal(err)
		}
		got, err := syn.Tensor(c.name, c.shape...)
		if err != nil {
			t.Fatal(err)
		}
		w, g := f32(t, want), f32(t, got)
		for i := range w {
			if math.Float32bits(w[i]) != math.Float32bits(g[i]) {
				t.Errorf("%s[%d] = %v, reference %s has %v", c.name, i, g[i], c.check, w[i])
			}
		}
		t.Logf("%s: first 8 values bit-identical to %s (%v)", c.name, c.check, g[:3])
	}
	// The other rules, against values worked by hand from SYNTHETIC.md's formulas.
	syn2 := NewSynthetic()
	for _, c := range []struct {
		name  string
		shape []int
		value func(u float64) float64
	}{
		{"mid_block.resnets.0.norm1.weight", []int{1280}, func(u float64) float64 { return 1 + 0.2*u }},
		{"mid_block.resnets.0.norm1.bias", []int{1280}, func(u float64) float64 { return 0.1 * u }},
		{"down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2.weight", []int{640, 2560}, func(u float64) float64 { return u * math.Sqrt(3.0/2560) }},
		// The rule is literal: "time_embedding" contains "embedding", so its Linears get 0.05·u.
		{"time_embedding.linear_1.weight", []int{1280, 320}, func(u float64) float64 { return 0.05 * u }},
		{"text_model.embeddings.position_embedding.weight", []int{77, 768}, func(u float64) float64 { return 0.05 * u }},
	} {
		d, err := syn2.Tensor(c.name, c.shape...)
		if err != nil {
			t.Fatal(err)
		}
		v := f32(t, d)
		for _, i := range []int{0, 1, len(v) - 1} {
			if want := float32(c.value(hashU(c.name, i))); v[i] != want {
				t.Errorf("%s[%d] = %v, want %v", c.name, i, v[i], want)
			}
		}
	}
	if got := syn2.Requested(); len(got) != 5 || got[3].Name != "time_embedding.linear_1.weight" || got[3].Shape[1] != 320 {
		t.Errorf("Requested() = %v", got)
	}
	if _, err := syn2.Tensor("x.weight"); err == nil {
		t.Error("synthetic tensor without a shape: no error")
	}
}

// hashU is SYNTHETIC.md's u for element i of name, written out separately from FillSynthetic.
func hashU(name string, i int) float64 {
	h := uint32(2166136261)
	for _, c := range []byte(name) {
		h = (h ^ uint32(c)) * 16777619
	}
	x := uint32(i)*2654435761 + h
	x ^= x >> 16
	x *= 0x85EBCA6B
	x ^= x >> 13
	x *= 0xC2B2AE35
	x ^= x >> 16
	return float64(x>>8)/16777216*2 - 1
}

func TestSyntheticParallelMatchesSerial(t *testing.T) {
	shape := []int{1280, 640, 3}
	par := make([]float32, numElements(shape))
	FillSynthetic(par, "up_blocks.1.resnets.0.conv1.weight", shape)
	scale := math.Sqrt(3.0 / (640 * 3))
	for i, v := range par {
		if want := float32(hashU("up_blocks.1.resnets.0.conv1.weight", i) * scale); v != want {
			t.Fatalf("element %d = %v, want %v", i, v, want)
		}
	}
}

func TestManifest(t *testing.T) {
	params := map[string]int{"unet-small-sd.txt": 579384964}
	for _, file := range []string{"clip-text-l14.txt", "unet-small-sd.txt", "vae-sd.txt"} {
		m, err := ReadManifest(testdata("manifests", file))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range m {
			n += numElements(r.Shape)
		}
		t.Logf("%s: %d tensors, %d parameters", file, len(m), n)
		if want, ok := params[file]; ok && n != want {
			t.Errorf("%s: %d parameters, GOLDEN.md says %d", file, n, want)
		}
	}
	m, err := ReadManifest(testdata("manifests", "clip-text-l14.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSyntheticFromManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	// Fetch everything but the first tensor, one with a wrong shape, and one extra.
	for _, r := range m[2:] {
		if _, err := s.Tensor(r.Name, r.Shape...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Tensor(m[1].Name, 76, 768); err == nil {
		t.Error("wrong shape from a manifest store: no error")
	}
	if _, err := s.Tensor("text_model.pooler.weight", 768, 768); err == nil {
		t.Error("unlisted tensor from a manifest store: no error")
	}
	s.Tensor(m[2].Name, m[2].Shape...)
	diff := DiffManifest(m, s.Requested())
	t.Logf("diff:\n%s", diff)
	for _, want := range []string{
		"missing " + m[0].Name + " [49408, 768]",
		"shape " + m[1].Name + ": got [76, 768], want [77, 768]",
		"extra text_model.pooler.weight [768, 768]",
		"repeated " + m[2].Name + " (2 times)",
	} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff lacks %q", want)
		}
	}
	if u := s.Unused(); len(u) != 2 {
		t.Errorf("Unused() = %v, want the two unfetched", u)
	}
	if DiffManifest(m, m) != "" {
		t.Error("a manifest differs from itself")
	}
	if _, err := ReadManifest(testdata("manifests", "nope.txt")); err == nil {
		t.Error("missing manifest: no error")
	}
}

// BenchmarkSyntheticUNet generates the whole small-sd UNet (579M parameters) per iteration.
func BenchmarkSyntheticUNet(b *testing.B) {
	m, err := ReadManifest(testdata("manifests", "unet-small-sd.txt"))
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, r := range m {
		n += numElements(r.Shape)
	}
	b.SetBytes(int64(4 * n))
	for b.Loop() {
		s := NewSynthetic()
		for _, r := range m {
			if _, err := s.Tensor(r.Name, r.Shape...); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestSyntheticTimeEmbeddingRule settles how SYNTHETIC.md's "contains embedding" applies to
// time_embedding.linear_*: it recomputes the UNet's time embedding at t = 981 (diffusers'
// sinusoidal projection, flip_sin_to_cos, Linear, SiLU, Linear) from the synthetic weights and
// compares it with unet.tap.time_embedding.
func TestSyntheticTimeEmbeddingRule(t *testing.T) {
	ref := mustOpenFile(t, testdata("fullsize-golden.safetensors"))
	want, err := ref.Tensor("unet.tap.time_embedding", 2, 1280)
	if err != nil {
		t.Fatal(err)
	}
	w := f32(t, want)[:1280]
	syn := NewSynthetic().View().Sub("time_embedding")
	get := func(name string, shape ...int) []float32 {
		d, err := syn.Tensor(name, shape...)
		if err != nil {
			t.Fatal(err)
		}
		return f32(t, d)
	}
	w1, b1 := get("linear_1.weight", 1280, 320), get("linear_1.bias", 1280)
	w2, b2 := get("linear_2.weight", 1280, 1280), get("linear_2.bias", 1280)
	// Timesteps(320, flip_sin_to_cos=True, freq_shift=0), in float32 as torch computes it.
	proj := make([]float64, 320)
	for i := 0; i < 160; i++ {
		e := float32(math.Exp(float64(float32(-math.Log(10000)) * float32(i) / 160)))
		arg := float64(float32(981) * e)
		proj[i], proj[160+i] = math.Cos(arg), math.Sin(arg)
	}
	linear := func(x []float64, wt, b []float32, out int) []float64 {
		y := make([]float64, out)
		in := len(x)
		for o := range y {
			s := float64(b[o])
			for k := range x {
				s += float64(wt[o*in+k]) * x[k]
			}
			y[o] = s
		}
		return y
	}
	h := linear(proj, w1, b1, 1280)
	for i, v := range h {
		h[i] = v / (1 + math.Exp(-v))
	}
	out := linear(h, w2, b2, 1280)
	maxErr, maxRef := 0.0, 0.0
	for i := range out {
		maxErr = math.Max(maxErr, math.Abs(out[i]-float64(w[i])))
		maxRef = math.Max(maxRef, math.Abs(float64(w[i])))
	}
	t.Logf("time embedding from synthetic weights: max abs error %.3g (max |ref| %.3g)", maxErr, maxRef)
	if maxErr > 1e-3*math.Max(1, maxRef) {
		t.Errorf("time embedding differs from the reference: the synthetic rule is misapplied")
	}
}

// BenchmarkFillSynthetic generates 16M values into a reused buffer (no allocation).
func BenchmarkFillSynthetic(b *testing.B) {
	shape := []int{1280, 1280, 10}
	dst := make([]float32, numElements(shape))
	b.SetBytes(int64(4 * len(dst)))
	for b.Loop() {
		FillSynthetic(dst, "up_blocks.0.resnets.0.conv1.weight", shape)
	}
}
