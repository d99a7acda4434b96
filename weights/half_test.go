package weights

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// TestTensorHalfFiles checks TensorHalf on every tensor of the tiny model's files: the stored
// halves of an fp16 file unchanged (so they widen to exactly what Tensor returns), and for
// float32 safetensors and PyTorch .bin files the round-to-nearest-even of Tensor's values.
func TestTensorHalfFiles(t *testing.T) {
	for _, c := range []struct {
		label, dir string
		opts       []Option
	}{
		{"fp16 safetensors", testdata("tiny-sd", "text_encoder"), []Option{WithVariant("fp16"), WithHalf()}},
		{"fp32 safetensors", testdata("tiny-sd", "unet"), []Option{WithHalf()}},
		{"fp32 .bin", testdata("tiny-sd-bin", "vae"), []Option{WithHalf()}},
		{"fp32 safetensors copied", testdata("tiny-sd", "vae"), []Option{WithHalf(), WithCopy()}},
	} {
		s := mustOpen(t, c.dir, c.opts...)
		if !s.PreferHalf() || !s.View().Sub("x").PreferHalf() {
			t.Errorf("%s: opened WithHalf but PreferHalf is false", c.label)
		}
		var values, wrong int
		for _, name := range s.Names() {
			full, err := s.Tensor(name)
			if err != nil {
				t.Fatal(err)
			}
			h, err := s.TensorHalf(name, []int(full.Shape())...)
			if err != nil {
				t.Fatal(err)
			}
			f := f32(t, full) // read after TensorHalf: dropped pages of a mapped file come back intact
			if len(h) != len(f) {
				t.Fatalf("%s: %s: %d halves for %d values", c.label, name, len(h), len(f))
			}
			for i, v := range f {
				want := Float32ToHalf(v)
				if strings.HasPrefix(c.label, "fp16") && HalfToFloat32(h[i]) != v {
					wrong++
				} else if h[i] != want {
					wrong++
				}
			}
			values += len(f)
		}
		t.Logf("%s: %d tensors, %d values, %d not as expected", c.label, len(s.Names()), values, wrong)
		if wrong != 0 {
			t.Errorf("%s: %d of %d half values wrong", c.label, wrong, values)
		}
		// Every tensor was last fetched as halves: the Store holds 2 bytes a value.
		if got := s.LoadedBytes(); got != 2*int64(values) {
			t.Errorf("%s: LoadedBytes %d after fetching %d values as halves, want %d", c.label, got, values, 2*values)
		}
		if len(s.Unused()) != 0 {
			t.Errorf("%s: unused after fetching everything: %v", c.label, s.Unused())
		}
	}
}

// TestPreferHalf checks where the preference comes from: WithHalf on the Store, or View.Half,
// which Sub passes on; and that the default is float32.
func TestPreferHalf(t *testing.T) {
	s := mustOpen(t, testdata("tiny-sd", "vae"))
	if s.PreferHalf() || s.View().PreferHalf() {
		t.Error("a Store opened without WithHalf prefers half")
	}
	if !s.View().Half().Sub("decoder").Sub("conv_in").PreferHalf() {
		t.Error("View.Half is not passed on by Sub")
	}
	syn := NewSynthetic()
	if syn.View().PreferHalf() || !syn.View().Half().PreferHalf() {
		t.Error("synthetic View: PreferHalf wrong")
	}
	var zero View
	if zero.PreferHalf() {
		t.Error("the zero View prefers half")
	}
	if _, err := zero.TensorHalf("w", 1); err == nil {
		t.Error("TensorHalf on the zero View did not fail")
	}
}

// TestTensorHalfErrors checks TensorHalf's strict checks match Tensor's.
func TestTensorHalfErrors(t *testing.T) {
	s := mustOpen(t, testdata("tiny-sd", "text_encoder"), WithHalf())
	v := s.View().Sub("text_model").Sub("final_layer_norm")
	if _, err := v.TensorHalf("weight", 33); err == nil || !strings.Contains(err.Error(), "[32]") {
		t.Errorf("wrong shape: %v", err)
	}
	if _, err := v.TensorHalf("nope"); err == nil || !strings.Contains(err.Error(), "text_model.final_layer_norm.nope") {
		t.Errorf("missing tensor: %v", err)
	}
	s.Close()
	if _, err := v.TensorHalf("weight", 32); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("closed store: %v", err)
	}
	syn := NewSynthetic()
	if _, err := syn.TensorHalf("w"); err == nil {
		t.Error("synthetic TensorHalf without a shape did not fail")
	}
}

// plainSource is a Source that is not a HalfSource.
type plainSource struct{ *Store }

// TestTensorHalfConverts checks the generic paths: synthetic weights, FromTensors and a Source
// without TensorHalf are rounded to nearest even, and LoadedBytes counts halves and floats.
func TestTensorHalfConverts(t *testing.T) {
	vals := []float32{1, 1 + 1.0/2048, 1 + 3.0/2048, 65520, -1e-8, 0.1, float32(math.Inf(-1)), 3.14159}
	m, err := FromTensors("mem", map[string]*tensor.Dense{
		"w": tensor.New(tensor.WithShape(2, 4), tensor.WithBacking(vals)),
		"b": tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{1, 2, 3})),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []uint16{0x3c00, 0x3c00, 0x3c02, 0x7c00, 0x8000, 0x2e66, 0xfc00, 0x4248}
	for _, src := range []Source{m, plainSource{m}} {
		h, err := NewView(src).TensorHalf("w", 2, 4)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range want {
			if h[i] != w {
				t.Errorf("%T: %v → %#04x, want %#04x", src, vals[i], h[i], w)
			}
		}
	}
	if _, err := m.Tensor("b", 3); err != nil {
		t.Fatal(err)
	}
	if got := m.LoadedBytes(); got != 2*8+4*3 {
		t.Errorf("LoadedBytes %d, want %d", got, 2*8+4*3)
	}

	syn := NewSynthetic()
	full, err := syn.Tensor("x.weight", 1000, 301) // large: generated in chunks on all cores
	if err != nil {
		t.Fatal(err)
	}
	h, err := syn.TensorHalf("x.weight", 1000, 301)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range f32(t, full) {
		if h[i] != Float32ToHalf(v) {
			t.Fatalf("synthetic %d: %#04x, want %#04x", i, h[i], Float32ToHalf(v))
		}
	}
}

// TestLoadHalfStrided checks the strided (PyTorch view) paths of the file backend, F16 and F32.
func TestLoadHalfStrided(t *testing.T) {
	// A 2×3 tensor stored transposed: element (i, j) at offset i + 2j.
	vals := []float32{0.5, -2, 3.25, 1e-3, 7, -0.125}
	f16 := make([]byte, 12)
	f32b := make([]byte, 24)
	for i := 0; i < 2; i++ {
		for j := 0; j < 3; j++ {
			v := vals[i*3+j]
			binary.LittleEndian.PutUint16(f16[2*(i+2*j):], Float32ToHalf(v))
			binary.LittleEndian.PutUint32(f32b[4*(i+2*j):], math.Float32bits(v))
		}
	}
	be := &fileBackend{m: map[string]*entry{}}
	be.add("h", &entry{dt: dtF16, shape: []int{2, 3}, data: f16, strides: []int{1, 2}})
	be.add("f", &entry{dt: dtF32, shape: []int{2, 3}, data: f32b, strides: []int{1, 2}})
	for _, name := range []string{"h", "f"} {
		h, err := be.loadHalf(name, []int{2, 3}, fmtF16)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if h[i] != Float32ToHalf(v) {
				t.Errorf("%s[%d] = %#04x, want %#04x", name, i, h[i], Float32ToHalf(v))
			}
		}
	}
	// Unaligned F16 data is copied, not aliased.
	buf := make([]byte, 13)
	copy(buf[1:], f16)
	be.add("u", &entry{dt: dtF16, shape: []int{6}, data: buf[1:]})
	h, err := be.loadHalf("u", []int{6}, fmtF16)
	if err != nil {
		t.Fatal(err)
	}
	for i := range h {
		if h[i] != binary.LittleEndian.Uint16(f16[2*i:]) {
			t.Errorf("unaligned [%d] = %#04x", i, h[i])
		}
	}
}
