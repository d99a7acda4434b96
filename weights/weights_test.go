package weights

import (
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"gorgonia.org/tensor"
)

// testdata returns a path under the repository's testdata directory.
func testdata(elem ...string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(append([]string{filepath.Dir(file), "..", "testdata"}, elem...)...)
}

func f32(t *testing.T, d *tensor.Dense) []float32 {
	t.Helper()
	v, ok := d.Data().([]float32)
	if !ok {
		t.Fatalf("tensor data is %T", d.Data())
	}
	return v
}

func mustOpen(t *testing.T, dir string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustOpenFile(t *testing.T, path string, opts ...Option) *Store {
	t.Helper()
	s, err := OpenFile(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// compareStores checks that a and b hold the same names with bit-identical values.
func compareStores(t *testing.T, a, b *Store) int {
	t.Helper()
	an, bn := a.Names(), b.Names()
	if len(an) != len(bn) {
		t.Errorf("%s has %d tensors, %s has %d", a.Path(), len(an), b.Path(), len(bn))
	}
	for _, name := range an {
		ta, err := a.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		tb, err := b.Tensor(name, ta.Shape()...)
		if err != nil {
			t.Error(err)
			continue
		}
		va, vb := f32(t, ta), f32(t, tb)
		for i := range va {
			if math.Float32bits(va[i]) != math.Float32bits(vb[i]) {
				t.Errorf("%s[%d]: %v in %s, %v in %s", name, i, va[i], a.Path(), vb[i], b.Path())
				break
			}
		}
	}
	return len(an)
}

func TestFormatsAgree(t *testing.T) {
	total := 0
	for _, comp := range []string{"text_encoder", "unet", "vae"} {
		st := mustOpen(t, testdata("tiny-sd", comp))
		bin := mustOpen(t, testdata("tiny-sd-bin", comp))
		if !strings.HasSuffix(st.Path(), ".safetensors") || !strings.HasSuffix(bin.Path(), ".bin") {
			t.Fatalf("opened %s and %s", st.Path(), bin.Path())
		}
		n := compareStores(t, st, bin)
		t.Logf("%s: %d tensors identical in safetensors and .bin (zip)", comp, n)
		total += n
		if comp == "text_encoder" {
			legacy := mustOpenFile(t, testdata("text_encoder.legacy-format.bin"))
			n := compareStores(t, st, legacy)
			t.Logf("%s: %d tensors identical in safetensors and legacy .bin", comp, n)
			total += n
		}
	}
	t.Logf("%d tensor comparisons, all bit-identical", total)
}

func TestFP16Variant(t *testing.T) {
	dir := testdata("tiny-sd", "text_encoder")
	full := mustOpen(t, dir)
	half := mustOpen(t, dir, WithVariant("fp16"))
	if !strings.HasSuffix(half.Path(), "model.fp16.safetensors") {
		t.Fatalf("fp16 variant opened %s", half.Path())
	}
	maxDiff, count := 0.0, 0
	for _, name := range full.Names() {
		a, err := full.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := half.Tensor(name, a.Shape()...)
		if err != nil {
			t.Fatal(err)
		}
		va, vb := f32(t, a), f32(t, b)
		for i := range va {
			want := HalfToFloat32(Float32ToHalf(va[i]))
			if math.Float32bits(want) != math.Float32bits(vb[i]) {
				t.Fatalf("%s[%d]: fp16 file has %v, fp32 %v rounds to %v", name, i, vb[i], va[i], want)
			}
			maxDiff = math.Max(maxDiff, math.Abs(float64(va[i])-float64(vb[i])))
			count++
		}
	}
	t.Logf("%d fp16 values equal the fp32 weights rounded to nearest even; max |fp32-fp16| = %.3g", count, maxDiff)
	if _, err := Open(testdata("tiny-sd", "unet"), WithVariant("fp16")); err == nil ||
		!strings.Contains(err.Error(), "diffusion_pytorch_model.fp16.safetensors") {
		t.Errorf("missing fp16 unet: got error %v", err)
	}
}

func TestHalfRounding(t *testing.T) {
	// Every half value round-trips; midpoints between neighbours round to the even one.
	for h := 0; h < 0x10000; h++ {
		f := HalfToFloat32(uint16(h))
		if f != f {
			continue
		}
		if got := Float32ToHalf(f); got != uint16(h) && !(f == 0 && got^uint16(h) == 0) {
			t.Fatalf("half %#04x → %v → %#04x", h, f, got)
		}
		if h&0x7fff < 0x7bff {
			next := HalfToFloat32(uint16(h + 1))
			mid := float32((float64(f) + float64(next)) / 2)
			want := uint16(h)
			if h&1 == 1 {
				want = uint16(h + 1)
			}
			if got := Float32ToHalf(mid); got != want {
				t.Fatalf("midpoint %v of %#04x,%#04x → %#04x, want %#04x", mid, h, h+1, got, want)
			}
		}
	}
	if Float32ToHalf(70000) != 0x7c00 || Float32ToHalf(-70000) != 0xfc00 {
		t.Error("overflow does not give ±Inf")
	}
}

func TestViewStrict(t *testing.T) {
	s := mustOpen(t, testdata("tiny-sd", "text_encoder"))
	w := s.View().Sub("text_model").Sub("embeddings")
	if w.Prefix() != "text_model.embeddings" {
		t.Fatalf("prefix %q", w.Prefix())
	}
	if !w.Has("position_embedding.weight") || w.Has("nope") {
		t.Error("Has is wrong")
	}
	if _, err := w.Tensor("position_embedding.weight", 77, 32); err != nil {
		t.Fatal(err)
	}
	_, err := w.Tensor("position_embedding.weight", 77, 33)
	t.Logf("shape mismatch: %v", err)
	for _, want := range []string{"text_model.embeddings.position_embedding.weight", "model.safetensors", "[77, 32]", "[77, 33]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("shape mismatch error %v does not mention %s", err, want)
		}
	}
	_, err = w.Sub("token_embedding").Tensor("bias", 32)
	t.Logf("missing: %v", err)
	if err == nil || !strings.Contains(err.Error(), "text_model.embeddings.token_embedding.bias") {
		t.Errorf("missing tensor error %v", err)
	}
	var zero View
	if _, err := zero.Tensor("x"); err == nil {
		t.Error("zero View gave a tensor")
	}
}

func TestUnused(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.safetensors")
	writeSafetensors(t, p, map[string]stTensor{
		"text_model.embeddings.position_ids": {"I64", []int{1, 3}, le64(0, 1, 2)},
		"a.weight":                           {"F32", []int{2}, le32(1.5, -2)},
	})
	s := mustOpen(t, dir)
	a, err := s.View().Sub("a").Tensor("weight", 2)
	if err != nil {
		t.Fatal(err)
	}
	if v := f32(t, a); v[0] != 1.5 || v[1] != -2 {
		t.Errorf("a.weight = %v", v)
	}
	un := s.Unused()
	t.Logf("unused: %v", un)
	if len(un) != 1 || un[0] != "text_model.embeddings.position_ids" {
		t.Errorf("Unused() = %v", un)
	}
	ids, err := s.Tensor("text_model.embeddings.position_ids", 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if v := f32(t, ids); v[2] != 2 {
		t.Errorf("I64 position_ids as float32: %v", v)
	}
	if len(s.Unused()) != 0 {
		t.Errorf("Unused after fetching all: %v", s.Unused())
	}
	if r := s.Requested(); len(r) != 2 || r[0].Name != "a.weight" {
		t.Errorf("Requested() = %v", r)
	}
}

func TestCheckAllUsed(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.safetensors")
	tensors := map[string]stTensor{}
	for _, n := range []string{"g", "f", "e", "d", "c", "b", "a"} {
		tensors[n+".weight"] = stTensor{"F32", []int{1}, le32(1)}
	}
	writeSafetensors(t, p, tensors)
	s := mustOpen(t, dir)
	if !strings.HasSuffix(s.Path(), "model.safetensors") {
		t.Fatalf("Path() = %q, want the file", s.Path())
	}
	if _, err := s.Tensor("d.weight", 1); err != nil {
		t.Fatal(err)
	}
	// Six unused: the first five in sorted order, then a count.
	err := s.CheckAllUsed()
	t.Logf("six unused: %v", err)
	want := s.Path() + " holds tensors the config does not use: a.weight, b.weight, c.weight, e.weight, f.weight and 1 more"
	if err == nil || err.Error() != want {
		t.Errorf("CheckAllUsed() = %v, want %q", err, want)
	}
	// Ignored names are not reported; an ignored name that is not held changes nothing.
	err = s.CheckAllUsed("a.weight", "b.weight", "missing.weight")
	want = s.Path() + " holds tensors the config does not use: c.weight, e.weight, f.weight, g.weight"
	if err == nil || err.Error() != want {
		t.Errorf("CheckAllUsed(a, b, missing) = %v, want %q", err, want)
	}
	if err := s.CheckAllUsed("a.weight", "b.weight", "c.weight", "e.weight", "f.weight", "g.weight"); err != nil {
		t.Errorf("all unused ignored: %v", err)
	}
	for _, n := range s.Names() {
		if _, err := s.Tensor(n, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CheckAllUsed(); err != nil {
		t.Errorf("after fetching all: %v", err)
	}
}

func TestLoadTime(t *testing.T) {
	start := time.Now()
	n, elems := 0, 0
	for _, root := range []string{"tiny-sd", "tiny-sd-bin"} {
		for _, comp := range []string{"text_encoder", "unet", "vae"} {
			s := mustOpen(t, testdata(root, comp))
			for _, name := range s.Names() {
				d, err := s.Tensor(name)
				if err != nil {
					t.Fatal(err)
				}
				n++
				elems += d.Shape().TotalSize()
			}
			if u := s.Unused(); len(u) != 0 {
				t.Errorf("unused after fetching all: %v", u)
			}
		}
	}
	t.Logf("opened both tiny models and fetched %d tensors (%d values) in %v", n, elems, time.Since(start))
}

func TestConcurrentFetch(t *testing.T) {
	s := mustOpen(t, testdata("tiny-sd-bin", "unet"))
	names := s.Names()
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for _, n := range names {
				if _, err := s.View().Tensor(n); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if len(s.Unused()) != 0 || len(s.Requested()) != 4*len(names) {
		t.Errorf("after concurrent fetch: %d unused, %d requests", len(s.Unused()), len(s.Requested()))
	}
}

func TestFromTensors(t *testing.T) {
	a := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{1, 2, 3, 4}))
	s, err := FromTensors("test set", map[string]*tensor.Dense{"blk.a": a})
	if err != nil {
		t.Fatal(err)
	}
	w := NewView(s).Sub("blk")
	if got, err := w.Tensor("a", 2, 2); err != nil || got != a {
		t.Errorf("FromTensors a: %v %v", got, err)
	}
	if _, err := w.Tensor("a", 4); err == nil || !strings.Contains(err.Error(), "test set") {
		t.Errorf("shape mismatch: %v", err)
	}
	i := tensor.New(tensor.WithShape(2), tensor.WithBacking([]int{1, 2}))
	if _, err := FromTensors("ints", map[string]*tensor.Dense{"i": i}); err == nil {
		t.Error("int tensor accepted")
	}
}
