package weights

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"
)

// F32 tensors of a mapped file alias the mapping; writing into one changes neither the file
// nor a fresh Store; WithCopy tensors survive Close.
func TestAliasAndCopy(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.safetensors")
	writeSafetensors(t, p, map[string]stTensor{"a": {"F32", []int{2, 2}, le32(1, 2, 3, 4)}, "h": {"F16", []int{1}, []byte{0, 0x3c}}})
	before, _ := os.ReadFile(p)

	s := mustOpen(t, dir)
	a, err := s.Tensor("a", 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	e := s.be.(*fileBackend).m["a"]
	if unsafe.Pointer(&f32(t, a)[0]) != unsafe.Pointer(&e.data[0]) {
		t.Error("aligned F32 tensor was copied, not aliased")
	}
	f32(t, a)[0] = 99 // a graph writing into its input
	if h, _ := s.Tensor("h", 1); f32(t, h)[0] != 1 {
		t.Errorf("F16 1.0 read as %v", f32(t, h)[0])
	}
	s.Close()
	if _, err := s.Tensor("a"); err == nil {
		t.Error("Tensor after Close: no error")
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(before, after) {
		t.Fatal("writing into an aliased tensor changed the file")
	}

	c := mustOpen(t, dir, WithCopy())
	a2, err := c.Tensor("a", 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if v := f32(t, a2); v[0] != 1 || v[3] != 4 {
		t.Errorf("WithCopy tensor after Close = %v", v)
	}
}

// BenchmarkOpenTiny opens the three tiny components (safetensors) and fetches every tensor.
func BenchmarkOpenTiny(b *testing.B) {
	benchOpen(b, "tiny-sd")
}

// BenchmarkOpenTinyBin is BenchmarkOpenTiny for the .bin (zip) copies.
func BenchmarkOpenTinyBin(b *testing.B) {
	benchOpen(b, "tiny-sd-bin")
}

func benchOpen(b *testing.B, root string) {
	for b.Loop() {
		for _, comp := range []string{"text_encoder", "unet", "vae"} {
			s, err := Open(testdata(root, comp))
			if err != nil {
				b.Fatal(err)
			}
			for _, n := range s.Names() {
				if _, err := s.Tensor(n); err != nil {
					b.Fatal(err)
				}
			}
			s.Close()
		}
	}
}
