package weights

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteSynthetic writes a few tensors with WriteSynthetic and reads them back through
// OpenFile: float32 exactly as FillSynthetic makes them, fp16 as Float32ToHalf rounds them.
func TestWriteSynthetic(t *testing.T) {
	m := []Request{{Name: "a.weight", Shape: []int{3, 5}}, {Name: "b.bias", Shape: []int{7}}, {Name: "c", Shape: []int{2, 1, 3}}}
	for _, fp16 := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "w.safetensors")
		if err := WriteSynthetic(path, m, fp16); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
			t.Errorf("fp16=%v: temporary file left behind", fp16)
		}
		s, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range m {
			want := make([]float32, numElements(r.Shape))
			FillSynthetic(want, r.Name, r.Shape)
			if fp16 {
				got, err := s.TensorHalf(r.Name, r.Shape...)
				if err != nil {
					t.Fatal(err)
				}
				for i, v := range want {
					if got[i] != Float32ToHalf(v) {
						t.Fatalf("fp16 %s[%d] = %#x, want %#x", r.Name, i, got[i], Float32ToHalf(v))
					}
				}
				continue
			}
			d, err := s.Tensor(r.Name, r.Shape...)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range d.Data().([]float32) {
				if v != want[i] {
					t.Fatalf("%s[%d] = %v, want %v", r.Name, i, v, want[i])
				}
			}
		}
		s.Close()
	}
	if err := WriteSynthetic(filepath.Join(t.TempDir(), "x"), []Request{{Name: "a", Shape: []int{1}}, {Name: "a", Shape: []int{1}}}, false); err == nil {
		t.Error("a tensor listed twice was written")
	}
	if _, err := SyntheticHeader([]Request{{Name: "a", Shape: []int{1 << 40, 1 << 40}}}, false); err == nil {
		t.Error("an overflowing shape gave a header")
	}
}
