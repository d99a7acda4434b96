package weights

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
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

// ReleasePages advises the whole mapping of a mapped file and leaves its tensors readable (their
// pages come back from the file); it does nothing for weights not mapped, nor after Close.
func TestReleasePages(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.safetensors")
	vals := make([]float32, 3000) // more than a page, so whole pages are advised
	for i := range vals {
		vals[i] = float32(i) + 0.5
	}
	// The name's length moves the data: pick one that leaves it 4-byte aligned, so it is aliased.
	var s *Store
	var a []float32
	for name := "a"; ; name += "x" {
		writeSafetensors(t, p, map[string]stTensor{name: {"F32", []int{3000}, le32(vals...)}, "h": {"F16", []int{1}, []byte{0, 0x3c}}})
		s = mustOpen(t, dir)
		d, err := s.Tensor(name, 3000)
		if err != nil {
			t.Fatal(err)
		}
		a = f32(t, d)
		if e := s.be.(*fileBackend).m[name]; !mmapSupported || unsafe.Pointer(&a[0]) == unsafe.Pointer(&e.data[0]) {
			break
		}
		s.Close()
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	a[0] = 99 // a private change: on Linux MADV_DONTNEED drops it, which shows the page went
	if n := s.ReleasePages(); mmapSupported && n != fi.Size() {
		t.Errorf("ReleasePages advised %d bytes, want the file's %d", n, fi.Size())
	}
	if mmapSupported && runtime.GOOS == "linux" && a[0] != vals[0] {
		t.Errorf("a[0] = %v after ReleasePages, want the file's %v (the page was not dropped)", a[0], vals[0])
	}
	for i := 1; i < len(a); i++ { // read again from the file after the release
		if a[i] != vals[i] {
			t.Fatalf("a[%d] = %v after ReleasePages, want %v", i, a[i], vals[i])
		}
	}
	h, err := s.TensorHalf("h", 1)
	if err != nil || h[0] != 0x3c00 {
		t.Fatalf("half tensor after ReleasePages: %v, %v", h, err)
	}
	s.Close()
	if n := s.ReleasePages(); n != 0 {
		t.Errorf("ReleasePages after Close advised %d bytes, want 0", n)
	}

	c := mustOpen(t, dir, WithCopy())
	if n := c.ReleasePages(); n != 0 {
		t.Errorf("ReleasePages of a WithCopy Store advised %d bytes, want 0", n)
	}
	if n := NewSynthetic().ReleasePages(); n != 0 {
		t.Errorf("ReleasePages of synthetic weights advised %d bytes, want 0", n)
	}
}

// StoredDtype names a file tensor's stored type, and nothing for absent or synthetic tensors.
func TestStoredDtype(t *testing.T) {
	dir := t.TempDir()
	writeSafetensors(t, filepath.Join(dir, "model.safetensors"), map[string]stTensor{"a": {"F32", []int{1}, le32(1)}, "h": {"F16", []int{1}, []byte{0, 0x3c}}})
	v := mustOpen(t, dir).View()
	for name, want := range map[string]string{"a": "F32", "h": "F16", "nope": ""} {
		if got := v.StoredDtype(name); got != want {
			t.Errorf("StoredDtype(%q) = %q, want %q", name, got, want)
		}
	}
	if got := NewSynthetic().View().StoredDtype("a"); got != "" {
		t.Errorf("synthetic StoredDtype = %q, want \"\"", got)
	}
}
