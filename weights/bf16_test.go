package weights

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"gorgonia.org/tensor"
)

// TestTensorBF16 checks bf16 weights: rounding to nearest even from float32 (files, FromTensors,
// synthetic, a plain Source), F16 files widened then rounded, BF16 files handed out unchanged, and
// where the preference comes from.
func TestTensorBF16(t *testing.T) {
	vals := []float32{1, 1 + 1.0/256, 1 + 3.0/256, 3.4e38, -1e-40, 0.1, float32(math.Inf(-1)), float32(math.NaN())}
	want := []uint16{0x3f80, 0x3f80, 0x3f82, 0x7f80, 0x8001, 0x3dcd, 0xff80, 0x7fc0}
	m, err := FromTensors("mem", map[string]*tensor.Dense{"w": tensor.New(tensor.WithShape(2, 4), tensor.WithBacking(vals))})
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []Source{m, plainSource{m}} {
		h, err := NewView(src).TensorBF16("w", 2, 4)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range want {
			if h[i] != w {
				t.Errorf("%T: %v → %#04x, want %#04x", src, vals[i], h[i], w)
			}
		}
	}

	for _, c := range []struct {
		label, dir string
		opts       []Option
	}{
		{"fp16 safetensors", testdata("tiny-sd", "text_encoder"), []Option{WithVariant("fp16"), WithBF16()}},
		{"fp32 safetensors", testdata("tiny-sd", "unet"), []Option{WithBF16()}},
		{"fp32 .bin", testdata("tiny-sd-bin", "vae"), []Option{WithBF16()}},
	} {
		s := mustOpen(t, c.dir, c.opts...)
		if !s.PreferBF16() || !s.View().Sub("x").PreferBF16() || s.PreferHalf() {
			t.Errorf("%s: opened WithBF16 but PreferBF16 is false (or PreferHalf true)", c.label)
		}
		var values, wrong int
		for _, name := range s.Names() {
			full, err := s.Tensor(name)
			if err != nil {
				t.Fatal(err)
			}
			h, err := s.TensorBF16(name, []int(full.Shape())...)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range f32(t, full) {
				if h[i] != Float32ToBF16(v) {
					wrong++
				}
				values++
			}
		}
		t.Logf("%s: %d values, %d not rounded to nearest even", c.label, values, wrong)
		if wrong != 0 {
			t.Errorf("%s: %d of %d bf16 values wrong", c.label, wrong, values)
		}
	}

	// A BF16 file: the stored bits come back unchanged.
	bits := []uint16{0x3f80, 0xc0a0, 0x0001, 0x7fc1}
	var data []byte
	for _, b := range bits {
		data = binary.LittleEndian.AppendUint16(data, b)
	}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	writeSafetensors(t, path, map[string]stTensor{"w": {"BF16", []int{2, 2}, data}})
	s, err := OpenFile(path, WithBF16())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := s.TensorBF16("w", 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range bits {
		if h[i] != b {
			t.Errorf("BF16 file value %d: %#04x, want %#04x as stored", i, h[i], b)
		}
	}

	syn := NewSynthetic()
	if syn.View().PreferBF16() || !syn.View().BF16().Sub("a").PreferBF16() {
		t.Error("synthetic View: PreferBF16 wrong")
	}
	full, err := syn.Tensor("x.weight", 300, 101)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := syn.TensorBF16("x.weight", 300, 101)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range f32(t, full) {
		if hs[i] != Float32ToBF16(v) {
			t.Fatalf("synthetic %d: %#04x, want %#04x", i, hs[i], Float32ToBF16(v))
		}
	}
	if _, err := (View{}).TensorBF16("w", 1); err == nil {
		t.Error("TensorBF16 on the zero View did not fail")
	}
}
