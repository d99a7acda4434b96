package lora_test

import (
	"context"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/lora"
	"github.com/smallsd/smallsd/unet"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

var (
	kohyaFile     = golden.Path("lora", "lora-kohya.safetensors")
	diffusersFile = golden.Path("lora", "lora-diffusers.safetensors")
)

func dense(ref *golden.Tensor) *tensor.Dense {
	d := make([]float32, len(ref.Data))
	for i, v := range ref.Data {
		d[i] = float32(v)
	}
	return tensor.New(tensor.WithShape(ref.Shape...), tensor.WithBacking(d))
}

func ids(ref *golden.Tensor) [][]int {
	v := ref.Ints()
	l := ref.Shape[1]
	var out [][]int
	for i := 0; i < len(v); i += l {
		out = append(out, v[i:i+l])
	}
	return out
}

func load(t *testing.T, path string) *lora.Adapter {
	t.Helper()
	a, err := lora.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func updates(t *testing.T, a *lora.Adapter, component string, scale float64) lora.Updates {
	t.Helper()
	u, err := lora.Combine(component, lora.Scaled{Adapter: a, Scale: scale})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestLoad(t *testing.T) {
	for _, p := range []string{kohyaFile, diffusersFile} {
		a := load(t, p)
		nu, nt := len(a.Layers(lora.UNet)), len(a.Layers(lora.TextEncoder))
		t.Logf("%s: %d UNet and %d text-encoder layers", a.Name, nu, nt)
		if nu != 120 || nt != 12 {
			t.Errorf("%s: %d UNet and %d text-encoder layers, want 120 and 12", p, nu, nt)
		}
	}
}

// TestTextEncoder: the text encoder with the LoRA at 0.7 (both file formats) against diffusers.
func TestTextEncoder(t *testing.T) {
	ref := golden.MustOpen(t, golden.Path("lora", "lora-golden.safetensors"))
	m, err := clip.Load(golden.Path("tiny-sd", "text_encoder"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	in := ids(ref.Must(t, "lora.text.input_ids"))
	for _, p := range []string{kohyaFile, diffusersFile} {
		a := load(t, p)
		got, err := m.EncodeLoRA(context.Background(), in, updates(t, a, lora.TextEncoder, 0.7))
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, a.Name+": lora.text.scale0.7", got.Float32s(), ref.Must(t, "lora.text.scale0.7"), 5e-6)                // 3.7e-7 measured
		golden.Check(t, a.Name+": vs lora.text.scale0.7.fused", got.Float32s(), ref.Must(t, "lora.text.scale0.7.fused"), 5e-6) // 4.4e-7
	}
	// Without updates: the plain model, bit for bit.
	plain, err := m.Encode(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	none, err := m.EncodeLoRA(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range plain.Float32s() {
		if none.Float32s()[i] != v {
			t.Fatal("EncodeLoRA(nil) differs from Encode")
		}
	}
}

// TestUNet: the UNet with the LoRA at 0.7 (both formats) against diffusers; the two formats
// give identical outputs.
func TestUNet(t *testing.T) {
	ref := golden.MustOpen(t, golden.Path("lora", "lora-golden.safetensors"))
	base := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m, err := unet.Load(golden.Path("tiny-sd", "unet"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sample, text := dense(base.Must(t, "unet.sq.sample")), dense(base.Must(t, "text.last_hidden_state"))
	var outs [][]float32
	for _, p := range []string{kohyaFile, diffusersFile} {
		a := load(t, p)
		got, err := m.ForwardLoRA(context.Background(), sample, 981, text, updates(t, a, lora.UNet, 0.7))
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, a.Name+": lora.unet.t981.scale0.7", got.Float32s(), ref.Must(t, "lora.unet.t981.scale0.7"), 2e-5)                // 1.3e-6
		golden.Check(t, a.Name+": vs lora.unet.t981.scale0.7.fused", got.Float32s(), ref.Must(t, "lora.unet.t981.scale0.7.fused"), 2e-5) // 1.7e-6
		outs = append(outs, got.Float32s())
	}
	diff := 0.0
	for i := range outs[0] {
		diff = max(diff, float64(abs(outs[0][i]-outs[1][i])))
	}
	t.Logf("kohya vs diffusers file: max difference %.3g", diff)
	if diff != 0 {
		t.Errorf("the two formats differ by %.3g", diff)
	}
	// Back to no LoRA: the base output, bit for bit.
	plain, err := m.Forward(context.Background(), sample, 981, text)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "unet.sq.t981.out after the LoRA calls", plain.Float32s(), base.Must(t, "unet.sq.t981.out"), 2e-5) // 1.2e-6
}

func abs(x float32) float32 { return max(x, -x) }

// TestFuse: merged weights against diffusers' fuse_lora.
func TestFuse(t *testing.T) {
	ref := golden.MustOpen(t, golden.Path("lora", "lora-golden.safetensors"))
	a := load(t, kohyaFile)
	for _, c := range []struct{ comp, module string }{
		{"text_encoder", "text_model.encoder.layers.0.mlp.fc1"},
		{"unet", "down_blocks.0.attentions.0.proj_in"},
		{"unet", "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"},
	} {
		s, err := weights.Open(golden.Path("tiny-sd", c.comp))
		if err != nil {
			t.Fatal(err)
		}
		w, err := s.Tensor(c.module + ".weight")
		if err != nil {
			t.Fatal(err)
		}
		f, err := lora.Fuse(w, a.Layers(c.comp)[lora.Flat(c.module)], 0.7)
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, "fused "+c.module, f.Float32s(), ref.Must(t, "lora.fused0.7."+c.comp+"."+c.module+".weight"), 1e-6)
		s.Close()
	}
}

// TestUnmatched: updates for layers a model lacks are an error naming them.
func TestUnmatched(t *testing.T) {
	m, err := clip.Load(golden.Path("tiny-sd", "text_encoder"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	a := load(t, kohyaFile)
	u := updates(t, a, lora.TextEncoder, 1)
	u["text_model_encoder_layers_7_mlp_fc1"] = u["text_model_encoder_layers_0_mlp_fc1"]
	u["no_such_layer"] = u["text_model_encoder_layers_0_mlp_fc1"]
	_, err = m.EncodeLoRA(context.Background(), [][]int{{1, 2}}, u)
	if err == nil || !strings.Contains(err.Error(), "text_model_encoder_layers_7_mlp_fc1") || !strings.Contains(err.Error(), "no_such_layer") {
		t.Fatalf("error %v", err)
	}
	t.Log(err)
	// The UNet's updates on the text encoder: every one unmatched.
	_, err = m.EncodeLoRA(context.Background(), [][]int{{1, 2}}, updates(t, a, lora.UNet, 1))
	if err == nil {
		t.Fatal("UNet updates accepted by the text encoder")
	}
}
