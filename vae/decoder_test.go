package vae

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// Tolerances relative to max(1, max|ref|), as golden.Check applies them: about 10× the largest
// error measured on the AVX-512 and AVX2 paths (given beside each).
const (
	decodeTol = 3e-5 // the decoded sample: 2.5e-6 (sq), 1.7e-6 (rect)
	encodeTol = 2e-5 // the encoder's mean and std: 1.9e-6
	sampleTol = 8e-6 // the encoder's seeded sample: 7.2e-7
)

// tapTols holds each decoder tap's tolerance, about 10× its largest measured error.
var tapTols = map[string]float64{
	"post_quant_conv":                1e-6, // exact here (a 1×1 convolution over 4 channels)
	"decoder.conv_in":                2e-6, // 1.5e-7
	"decoder.mid_block.attentions.0": 7e-6, // 6.1e-7
	"decoder.mid_block":              6e-6, // 5.5e-7
	"decoder.up_blocks.0.resnets.0":  7e-6, // 6.2e-7
	"decoder.up_blocks.0":            9e-6, // 8.5e-7
	"decoder.up_blocks.1":            2e-5, // 1.0e-6
	"decoder.up_blocks.2":            9e-6, // 9.0e-7
	"decoder.up_blocks.3":            1e-5, // 9.1e-7
	"decoder.conv_norm_out":          2e-5, // 1.4e-6
}

func dense(ref *golden.Tensor) *tensor.Dense {
	return tensor.New(tensor.WithShape(ref.Shape...), tensor.WithBacking(ref.F32()))
}

func f32(d *tensor.Dense) []float32 { return d.Float32s()[:d.Size()] }

func loadTiny(t *testing.T, folder string) *Decoder {
	t.Helper()
	d, err := LoadDecoder(golden.Path(folder, "vae"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDecodeGolden(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	st := loadTiny(t, "tiny-sd")
	bin := loadTiny(t, "tiny-sd-bin")
	for _, c := range []string{"sq", "rect"} {
		lat := f.Must(t, "vae."+c+".latents")
		ref := f.Must(t, "vae."+c+".decoded")
		got, err := st.Decode(context.Background(), dense(lat))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Shape().Eq(tensor.Shape(ref.Shape)) {
			t.Fatalf("vae.%s: shape %v, want %v", c, got.Shape(), ref.Shape)
		}
		golden.Check(t, "vae."+c+".decoded", f32(got), ref, decodeTol)

		fromBin, err := bin.Decode(context.Background(), dense(lat))
		if err != nil {
			t.Fatal(err)
		}
		diff := 0
		for i, v := range f32(fromBin) {
			if v != f32(got)[i] {
				diff++
			}
		}
		t.Logf("vae.%s: .bin and safetensors decodes differ in %d of %d values", c, diff, got.Size())
		if diff != 0 {
			t.Errorf("vae.%s: the .bin weights decode differently from the safetensors ones", c)
		}
	}
}

// TestDecodeBatch decodes two different latents in one call: each sample must equal its own
// decode (samples are decoded one at a time through one cached program).
func TestDecodeBatch(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	d := loadTiny(t, "tiny-sd")
	lat := f.Must(t, "vae.sq.latents")
	ref := f.Must(t, "vae.sq.decoded")
	two := append(lat.F32(), f.Must(t, "e2e.pndm.latents_init").F32()...)
	x := tensor.New(tensor.WithShape(2, 4, 16, 16), tensor.WithBacking(two))
	orig := append([]float32(nil), two...)
	got, err := d.Decode(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	if want := (tensor.Shape{2, 3, 128, 128}); !got.Shape().Eq(want) {
		t.Fatalf("shape %v, want %v", got.Shape(), want)
	}
	golden.Check(t, "batch[0]", f32(got)[:len(ref.Data)], ref, decodeTol)
	second, err := d.Decode(context.Background(), tensor.New(tensor.WithShape(1, 4, 16, 16), tensor.WithBacking(two[len(lat.Data):])))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range f32(second) {
		if f32(got)[len(ref.Data)+i] != v {
			t.Fatalf("batch[1] differs from its own decode at %d", i)
		}
	}
	for i := range two {
		if two[i] != orig[i] {
			t.Fatal("Decode modified its input")
		}
	}
}

func TestTaps(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	d := loadTiny(t, "tiny-sd")
	var names []string
	for _, n := range f.Names() {
		if strings.HasPrefix(n, "tap.vae.") {
			names = append(names, strings.TrimPrefix(n, "tap.vae."))
		}
	}
	if len(names) == 0 {
		t.Fatal("no tap.vae.* tensors in the reference file")
	}
	got, err := d.ForwardTaps(context.Background(), dense(f.Must(t, "vae.rect.latents")), names)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		ref := f.Must(t, "tap.vae."+n)
		if !got[n].Shape().Eq(tensor.Shape(ref.Shape)) {
			t.Errorf("%s: shape %v, want %v", n, got[n].Shape(), ref.Shape)
			continue
		}
		lim, ok := tapTols[n]
		if !ok {
			t.Errorf("%s: no tolerance in tapTols", n)
		}
		golden.Check(t, n, f32(got[n]), ref, lim)
	}
	if _, err := d.ForwardTaps(context.Background(), dense(f.Must(t, "vae.rect.latents")), []string{"decoder.nope"}); err == nil || !strings.Contains(err.Error(), "decoder.nope") {
		t.Errorf("unknown tap: err = %v, want one naming it", err)
	}
}

// TestDeprecatedAttentionNames loads the tiny weights with the mid-block attention renamed to
// the pre-0.14 names (query/key/value/proj_attn), as old checkpoints store them.
func TestDeprecatedAttentionNames(t *testing.T) {
	s, err := weights.Open(golden.Path("tiny-sd", "vae"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := strings.NewReplacer(".to_q.", ".query.", ".to_k.", ".key.", ".to_v.", ".value.", ".to_out.0.", ".proj_attn.")
	m := map[string]*tensor.Dense{}
	renamed := 0
	for _, n := range s.Names() {
		v, err := s.Tensor(n)
		if err != nil {
			t.Fatal(err)
		}
		if o := old.Replace(n); o != n && strings.HasPrefix(n, "decoder.") {
			renamed++
			n = o
		}
		m[n] = v
	}
	if renamed != 8 {
		t.Fatalf("renamed %d tensors, want 8", renamed)
	}
	src, err := weights.FromTensors("old-names", m)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(golden.Path("tiny-sd", "vae", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDecoder(cfg, src.View())
	if err != nil {
		t.Fatal(err)
	}
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	got, err := d.Decode(context.Background(), dense(f.Must(t, "vae.rect.latents")))
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "vae.rect.decoded (old names)", f32(got), f.Must(t, "vae.rect.decoded"), decodeTol)
}

func TestManifest(t *testing.T) {
	cfg, err := LoadConfig(golden.Path("configs", "vae", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ScalingFactor != DefaultScalingFactor {
		t.Errorf("scaling_factor %v, want the default %v", cfg.ScalingFactor, DefaultScalingFactor)
	}
	all, err := weights.ReadManifest(golden.Path("manifests", "vae-sd.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var want []weights.Request
	for _, r := range all {
		if strings.HasPrefix(r.Name, "decoder.") || strings.HasPrefix(r.Name, "post_quant_conv.") {
			want = append(want, r)
		}
	}
	s := weights.NewSynthetic()
	if _, err := NewDecoder(cfg, s.View()); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d tensors requested, %d decoder tensors in the manifest", len(s.Requested()), len(want))
	if diff := weights.DiffManifest(want, s.Requested()); diff != "" {
		t.Errorf("requested tensors differ from the manifest:\n%s", diff)
	}
}

// TestFullSize decodes testdata/fullsize-golden.safetensors' vae.latents (1×4×16×16) with the
// SD VAE config and synthetic weights.
func TestFullSize(t *testing.T) {
	if testing.Short() {
		t.Skip("full-size synthetic decoder skipped under -short")
	}
	cfg, err := LoadConfig(golden.Path("configs", "vae", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d, err := NewDecoder(cfg, weights.NewSynthetic().View())
	if err != nil {
		t.Fatal(err)
	}
	built := time.Since(start)
	f := golden.MustOpen(t, golden.Path("fullsize-golden.safetensors"))
	start = time.Now()
	got, err := d.Decode(context.Background(), dense(f.Must(t, "vae.latents")))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("synthetic weights %v, decode of 1×4×16×16 %v", built.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	golden.Check(t, "vae.decoded (full size)", f32(got), f.Must(t, "vae.decoded"), 1.2e-4) // 1.1e-5 measured (Winograd on most layers)
}

func TestProgramCache(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	d := loadTiny(t, "tiny-sd")
	cached := func() int { return d.runner.Cache().Len() }
	decode := func(c string) {
		t.Helper()
		got, err := d.Decode(context.Background(), dense(f.Must(t, "vae."+c+".latents")))
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, "vae."+c+".decoded", f32(got), f.Must(t, "vae."+c+".decoded"), decodeTol)
	}
	decode("sq")
	decode("rect")
	if n := cached(); n != 2 {
		t.Errorf("%d programs cached under the default limit, want 2", n)
	}
	d.SetCacheLimit(0) // keeps only the last used (rect)
	if n := cached(); n != 1 {
		t.Errorf("%d programs cached with limit 0, want 1", n)
	}
	decode("sq") // recompiled, evicting rect
	decode("sq")
	if n := cached(); n != 1 {
		t.Errorf("%d programs cached with limit 0, want 1", n)
	}
}

// TestAnySize decodes latents of sizes the reference does not cover: any h, w works.
func TestAnySize(t *testing.T) {
	d := loadTiny(t, "tiny-sd")
	for _, s := range [][2]int{{1, 1}, {3, 5}, {7, 2}} {
		x := tensor.New(tensor.WithShape(1, 4, s[0], s[1]), tensor.WithBacking(make([]float32, 4*s[0]*s[1])))
		for i := range x.Float32s() {
			x.Float32s()[i] = float32(i%7) - 3
		}
		got, err := d.Decode(context.Background(), x)
		if err != nil {
			t.Fatal(err)
		}
		if want := (tensor.Shape{1, 3, 8 * s[0], 8 * s[1]}); !got.Shape().Eq(want) {
			t.Errorf("%v latents: shape %v, want %v", s, got.Shape(), want)
		}
		for _, v := range f32(got) {
			if v != v {
				t.Fatalf("%v latents: NaN in the output", s)
			}
		}
	}
}
