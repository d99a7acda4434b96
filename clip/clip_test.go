package clip

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// tol is about 10× the largest error measured against the reference, relative to
// max(1, max|ref|), over every output and tap, on the AVX-512 and AVX2 paths (4.2e-7, the
// self-attention tap on AVX2; see README's "How we know it is right").
const tol = 4e-6

func loadTiny(t testing.TB, dir string, opts ...weights.Option) *TextModel {
	t.Helper()
	m, err := Load(golden.Path(dir, "text_encoder"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// rows splits reference ids (B×L) into one slice per row.
func rows(ref *golden.Tensor) [][]int {
	all := ref.Ints()
	l := ref.Shape[1]
	var out [][]int
	for b := 0; b < ref.Shape[0]; b++ {
		out = append(out, all[b*l:(b+1)*l])
	}
	return out
}

func TestGoldenTiny(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	ids := rows(f.Must(t, "text.input_ids"))
	got, err := m.Encode(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if s := got.Shape(); s[0] != 2 || s[1] != 77 || s[2] != 32 {
		t.Fatalf("shape %v, want (2, 77, 32)", s)
	}
	golden.Check(t, "text.last_hidden_state", got.Float32s(), f.Must(t, "text.last_hidden_state"), tol)
}

// TestGoldenTaps checks every text tap the reference recorded, so a failure says where it starts.
func TestGoldenTaps(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	var taps []string
	for _, name := range f.Names() {
		if strings.HasPrefix(name, "tap.text.") {
			taps = append(taps, strings.TrimPrefix(name, "tap.text."))
		}
	}
	if len(taps) < 5 {
		t.Fatalf("only %d text taps in the reference: %v", len(taps), taps)
	}
	got, err := m.ForwardTaps(context.Background(), rows(f.Must(t, "text.input_ids")), append(taps, "final_layer_norm"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range taps {
		lim := tol
		if name == "embeddings" {
			lim = 0 // token + position embedding: one float32 addition, exact
		}
		golden.Check(t, "tap.text."+name, got[name].Float32s(), f.Must(t, "tap.text."+name), lim)
	}
	golden.Check(t, "final_layer_norm", got["final_layer_norm"].Float32s(), f.Must(t, "text.last_hidden_state"), tol)
}

// TestFormats checks that safetensors, zip .bin and legacy .bin give identical outputs and
// that the fp16 variant is close.
func TestFormats(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	ids := rows(f.Must(t, "text.input_ids"))
	ref := f.Must(t, "text.last_hidden_state")
	encode := func(m *TextModel) []float32 {
		t.Helper()
		out, err := m.Encode(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		return out.Float32s()
	}
	base := encode(loadTiny(t, "tiny-sd"))

	bin := encode(loadTiny(t, "tiny-sd-bin"))
	cfg, err := LoadConfig(golden.Path("tiny-sd", "text_encoder", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := weights.OpenFile(golden.Path("text_encoder.legacy-format.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	legacyModel, err := New(cfg, s.View())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range s.Unused() {
		if name != positionIDs {
			t.Errorf("legacy .bin: tensor %s not used", name)
		}
	}
	legacy := encode(legacyModel)
	for i := range base {
		if bin[i] != base[i] || legacy[i] != base[i] {
			t.Fatalf("element %d: safetensors %g, zip .bin %g, legacy .bin %g; want identical", i, base[i], bin[i], legacy[i])
		}
	}
	t.Logf("safetensors, zip .bin and legacy .bin: %d identical values", len(base))

	half := encode(loadTiny(t, "tiny-sd", weights.WithVariant("fp16")))
	// fp16 weights: 6.5e-4 of max|ref| measured (the rounding of the weights).
	golden.Check(t, "fp16 variant", half, ref, 7e-3)
	var d32 float64
	for i := range half {
		d32 = math.Max(d32, math.Abs(float64(half[i]-base[i])))
	}
	if d32 == 0 {
		t.Errorf("fp16 variant gives exactly the fp32 output: the variant file was not read")
	}
}

// TestPrefix checks causality: the hidden states of the first k ids do not depend on the ids
// after them, so encoding a prefix (a shorter sequence) gives the same rows.
func TestPrefix(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	ids := rows(f.Must(t, "text.input_ids"))
	full, err := m.Encode(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{1, 5, 76} {
		pre := [][]int{ids[0][:k], ids[1][:k]}
		got, err := m.Encode(context.Background(), pre)
		if err != nil {
			t.Fatal(err)
		}
		d := 32
		want := make([]float64, 0, 2*k*d)
		for b := 0; b < 2; b++ {
			for _, v := range full.Float32s()[b*77*d : (b*77+k)*d] {
				want = append(want, float64(v))
			}
		}
		golden.Check(t, fmt.Sprintf("prefix %d", k), got.Float32s(), &golden.Tensor{Name: "prefix", Shape: []int{2, k, d}, Data: want}, 1e-6) // exact here
	}
}

// TestPooled checks the pooled output against the reference last hidden state at each row's
// first eos id (the tiny config's eos is 794), and both of transformers' rules (argmax when
// eos_token_id is 2, else the first eos) on rows that tell them apart.
func TestPooled(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	ids := rows(f.Must(t, "text.input_ids"))
	ref := f.Must(t, "text.last_hidden_state")
	eos := m.Config().EosTokenID
	check := func(label string, pos []int) {
		t.Helper()
		_, pooled, err := m.EncodePooled(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		want := &golden.Tensor{Name: label, Shape: []int{2, 32}}
		for b, p := range pos {
			want.Data = append(want.Data, ref.Data[(b*77+p)*32:(b*77+p+1)*32]...)
		}
		golden.Check(t, label, pooled.Float32s(), want, tol)
	}
	var first []int
	for _, row := range ids {
		p := -1
		for i, id := range row {
			if id == eos {
				p = i
				break
			}
		}
		if p < 1 {
			t.Fatalf("reference row has eos %d at %d; want a real position", eos, p)
		}
		first = append(first, p)
	}
	t.Logf("first eos positions %v", first)
	check("pooled (first eos)", first)

	// Rows that tell the two rules apart, checked against Encode's own rows.
	for _, c := range []struct {
		eos int
		ids [][]int
		pos []int
	}{
		{2, [][]int{{5, 2, 700, 3, 2}, {793, 5, 6, 2, 2}}, []int{2, 0}}, // eos 2: argmax
		{3, [][]int{{5, 2, 700, 3, 3}, {5, 6, 7, 8, 9}}, []int{3, 0}},   // first eos; none → 0
	} {
		m.cfg.EosTokenID = c.eos
		last, pooled, err := m.EncodePooled(context.Background(), c.ids)
		m.cfg.EosTokenID = eos
		if err != nil {
			t.Fatal(err)
		}
		for b, p := range c.pos {
			want := last.Float32s()[(b*5+p)*32 : (b*5+p+1)*32]
			got := pooled.Float32s()[b*32 : (b+1)*32]
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("eos_token_id %d, ids %v: pooled row %d is not the hidden state at position %d", c.eos, c.ids[b], b, p)
				}
			}
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	m := loadTiny(t, "tiny-sd")
	ctx := context.Background()
	long := make([]int, 78)
	for _, c := range []struct {
		name string
		ids  [][]int
		want string
	}{
		{"empty batch", nil, "no token ids"},
		{"empty row", [][]int{{}}, "want 1…77"},
		{"too long", [][]int{long}, "max_position_embeddings"},
		{"ragged", [][]int{{1, 2}, {1}}, "row 1 has 1 ids"},
		{"id too large", [][]int{{1, 795}}, "id 795 at row 0, position 1"},
		{"negative id", [][]int{{-1}}, "outside the vocabulary"},
	} {
		_, err := m.Encode(ctx, c.ids)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Encode(cancelled, [][]int{{1, 2}}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error %v", err)
	}
	if _, err := m.ForwardTaps(ctx, [][]int{{1}}, []string{"layers.9"}); err == nil || !strings.Contains(err.Error(), "layers.9") {
		t.Errorf("unknown tap: error %v", err)
	}
	names, err := m.TapNames()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1+2*5+1 {
		t.Errorf("TapNames: %v", names)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("Load of an empty folder succeeded")
	}
	// A config with one layer more than the checkpoint: the missing tensor is named.
	cfg, err := LoadConfig(golden.Path("tiny-sd", "text_encoder"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := weights.Open(golden.Path("tiny-sd", "text_encoder"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg.NumHiddenLayers = 3
	if _, err := New(cfg, s.View()); err == nil || !strings.Contains(err.Error(), "text_model.encoder.layers.2.self_attn.q_proj.weight") {
		t.Errorf("missing layer: error %v", err)
	}
	cfg.NumHiddenLayers, cfg.IntermediateSize = 2, 36
	if _, err := New(cfg, s.View()); err == nil || !strings.Contains(err.Error(), "mlp.fc1.weight") {
		t.Errorf("wrong intermediate_size: error %v", err)
	}
	cfg.IntermediateSize, cfg.HiddenAct = 37, "relu"
	if _, err := New(cfg, s.View()); err == nil || !strings.Contains(err.Error(), "hidden_act") {
		t.Errorf("unsupported activation: error %v", err)
	}
}

// TestConcurrent runs Encode from several goroutines on two shapes and compares every result
// with a serial run.
func TestConcurrent(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	ids := rows(f.Must(t, "text.input_ids"))
	inputs := [][][]int{ids, {ids[1][:20]}}
	var want []*tensor.Dense
	for _, in := range inputs {
		out, err := m.Encode(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, out)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			out, err := m.Encode(context.Background(), inputs[g%2])
			if err != nil {
				errs <- err
				return
			}
			w := want[g%2].Float32s()
			for i, v := range out.Float32s() {
				if v != w[i] {
					errs <- fmt.Errorf("goroutine %d: element %d is %g, serial run gave %g", g, i, v, w[i])
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
