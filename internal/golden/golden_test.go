package golden

import "testing"

func TestOpenReference(t *testing.T) {
	f := MustOpen(t, Path("tiny-sd-golden.safetensors"))
	ids := f.Must(t, "text.input_ids")
	if ids.DType != "I64" || len(ids.Shape) != 2 || ids.Shape[1] != 77 {
		t.Fatalf("text.input_ids: dtype %s shape %v", ids.DType, ids.Shape)
	}
	img := f.Must(t, "e2e.pndm.image_u8")
	for _, v := range img.Data {
		if v < 0 || v > 255 || v != float64(int(v)) {
			t.Fatalf("image_u8 value %v out of range", v)
		}
	}
	if _, err := f.Get("no.such.tensor"); err == nil {
		t.Fatal("missing tensor: no error")
	}
	if got := Check(t, "self", ids.F32(), ids, 0); got != 0 {
		t.Fatalf("self comparison error %v", got)
	}
}

func TestOpenBad(t *testing.T) {
	if _, err := Open(Path("does-not-exist.safetensors")); err == nil {
		t.Fatal("missing file: no error")
	}
}

func TestF16(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x0001, 5.960464477539063e-08}, {0x8001, -5.960464477539063e-08}, {0x7bff, 65504}} {
		if got := f16(c.h); got != c.want {
			t.Errorf("f16(%#x) = %v, want %v", c.h, got, c.want)
		}
	}
}
