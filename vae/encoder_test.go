package vae

import (
	"context"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/torchrand"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

func loadTinyEncoder(t *testing.T, folder string) *Encoder {
	t.Helper()
	e, err := LoadEncoder(golden.Path(folder, "vae"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// encoderInput is the reference's encoder input: e2e.pndm's 8-bit image as NCHW, /127.5 − 1.
func encoderInput(t *testing.T) *tensor.Dense {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	u8 := f.Must(t, "e2e.pndm.image_u8") // H×W×3
	h, w := u8.Shape[0], u8.Shape[1]
	x := make([]float32, 3*h*w)
	for p := 0; p < h*w; p++ {
		for c := 0; c < 3; c++ {
			x[c*h*w+p] = float32(u8.Data[3*p+c])/127.5 - 1
		}
	}
	return tensor.New(tensor.WithShape(1, 3, h, w), tensor.WithBacking(x))
}

func TestEncodeGolden(t *testing.T) {
	ref := golden.MustOpen(t, golden.Path("img2img-golden.safetensors"))
	x := encoderInput(t)
	for _, folder := range []string{"tiny-sd", "tiny-sd-bin"} {
		e := loadTinyEncoder(t, folder)
		d, err := e.Encode(context.Background(), x)
		if err != nil {
			t.Fatal(err)
		}
		if d.Shape != [4]int{1, 4, 16, 16} {
			t.Fatalf("shape %v, want [1 4 16 16]", d.Shape)
		}
		golden.Check(t, folder+" vae_enc.mean", d.Mean, ref.Must(t, "vae_enc.mean"), encodeTol)
		golden.Check(t, folder+" vae_enc.std", d.Std, ref.Must(t, "vae_enc.std"), encodeTol)
		golden.Check(t, folder+" vae_enc.sample_seed3", d.Sample(torchrand.New(3)), ref.Must(t, "vae_enc.sample_seed3"), sampleTol)
	}
}

// TestEncodeBatch encodes two images in one call: each must equal its own encode.
func TestEncodeBatch(t *testing.T) {
	e := loadTinyEncoder(t, "tiny-sd")
	x := encoderInput(t)
	one, err := e.Encode(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	v := x.Float32s()
	flipped := make([]float32, len(v))
	for i := range v {
		flipped[i] = -v[i]
	}
	two, err := e.Encode(context.Background(), tensor.New(tensor.WithShape(2, 3, 128, 128), tensor.WithBacking(append(append([]float32{}, v...), flipped...))))
	if err != nil {
		t.Fatal(err)
	}
	if two.Shape != [4]int{2, 4, 16, 16} {
		t.Fatalf("shape %v", two.Shape)
	}
	for i, m := range one.Mean {
		if two.Mean[i] != m || two.Std[i] != one.Std[i] {
			t.Fatalf("sample 0 of a batch differs from its own encode at %d", i)
		}
	}
	same := 0
	for i, m := range one.Mean {
		if two.Mean[len(one.Mean)+i] == m {
			same++
		}
	}
	if same == len(one.Mean) {
		t.Error("sample 1 of the batch encodes like sample 0")
	}
}

func TestEncodeBadInput(t *testing.T) {
	e := loadTinyEncoder(t, "tiny-sd")
	ctx := context.Background()
	for _, c := range []struct {
		x    *tensor.Dense
		want string
	}{
		{nil, "nil images"},
		{tensor.New(tensor.WithShape(1, 4, 16, 16), tensor.WithBacking(make([]float32, 4*16*16))), "want N×3×H×W"},
		{tensor.New(tensor.WithShape(1, 3, 12, 16), tensor.WithBacking(make([]float32, 3*12*16))), "multiples of 8"},
		{tensor.New(tensor.WithShape(1, 3, 16, 16), tensor.WithBacking(make([]float64, 3*16*16))), "want float32"},
	} {
		if _, err := e.Encode(ctx, c.x); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one containing %q", err, c.want)
		}
	}
	cfg := e.Config()
	cfg.DownBlockTypes = []string{"DownEncoderBlock2D", "CrossAttnDownBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"}
	if _, err := NewEncoder(cfg, weights.NewSynthetic().View()); err == nil || !strings.Contains(err.Error(), "down_block_types[1]") {
		t.Errorf("error %v, want one naming down_block_types[1]", err)
	}
	e.Close()
	if _, err := e.Encode(ctx, encoderInput(t)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Encode after Close: error %v, want one saying it is closed", err)
	}
}

// TestEncoderManifest: the SD VAE encoder requests exactly the manifest's encoder.* and
// quant_conv.* tensors, with their shapes, and decoder plus encoder use every tensor of it.
func TestEncoderManifest(t *testing.T) {
	cfg, err := LoadConfig(golden.Path("configs", "vae", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	all, err := weights.ReadManifest(golden.Path("manifests", "vae-sd.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var want []weights.Request
	for _, r := range all {
		if strings.HasPrefix(r.Name, "encoder.") || strings.HasPrefix(r.Name, "quant_conv.") {
			want = append(want, r)
		}
	}
	s := weights.NewSynthetic()
	if _, err := NewEncoder(cfg, s.View()); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d tensors requested, %d encoder tensors in the manifest", len(s.Requested()), len(want))
	if diff := weights.DiffManifest(want, s.Requested()); diff != "" {
		t.Errorf("requested tensors differ from the manifest:\n%s", diff)
	}
	m, err := weights.NewSyntheticFromManifest(all)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewEncoder(cfg, m.View()); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDecoder(cfg, m.View()); err != nil {
		t.Fatal(err)
	}
	if err := m.CheckAllUsed(); err != nil {
		t.Error(err)
	}
}
