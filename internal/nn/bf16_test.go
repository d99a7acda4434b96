package nn

import (
	"testing"

	"github.com/smallsd/smallsd/internal/kernels"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestConvWinogradBF16 checks the convolution path choice for bf16 weights: Winograd from 128
// output tiles where the CPU multiplies bf16 with AVX512-BF16, never on AMX, as for float32
// elsewhere.
func TestConvWinogradBF16(t *testing.T) {
	conv := func(n, c, h int) kernels.ConvParams {
		return kernels.ConvParams{N: n, C: c, H: h, W: h, K: c, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
	}
	bf, half := &HalfWeight{BF16: true}, &HalfWeight{}
	small, mid, big := conv(2, 1280, 16), conv(2, 640, 32), conv(2, 320, 64) // 32, 128 and 512 output tiles
	for _, p := range []kernels.ConvParams{small, mid, big} {
		if convWinograd(p, half) != useWinograd(p) {
			t.Errorf("fp16 weights do not follow useWinograd on %+v", p)
		}
	}
	if kernels.AMX() {
		for _, p := range []kernels.ConvParams{small, mid, big} {
			if convWinograd(p, bf) {
				t.Errorf("bf16 weights on AMX: Winograd on %+v, where the AMX convolution is faster", p)
			}
		}
		return
	}
	if !convWinograd(big, bf) || !convWinograd(mid, bf) {
		t.Error("bf16 weights: no Winograd at 128 or 512 tiles")
	}
	if !kernels.BF16Native() {
		if convWinograd(small, bf) != useWinograd(small) {
			t.Error("bf16 weights widened into float32 kernels do not follow useWinograd")
		}
		t.Skip("CPU lacks AVX512-BF16: the bf16-native choice not checked")
	}
	if convWinograd(small, bf) {
		t.Error("bf16 weights with AVX512-BF16: Winograd at 32 tiles, where the bf16 GEMM is faster")
	}
}

// TestAttentionBF16Choice checks that an attention built from bf16 weights runs the bf16 kernel
// (kernels.AttentionBF16) and one built from float32 or fp16 weights the float32 one.
func TestAttentionBF16Choice(t *testing.T) {
	cfg := AttentionConfig{QueryDim: 16, Heads: 2, HeadDim: 8}
	for _, c := range []struct {
		name string
		w    weights.View
		want bool
	}{
		{"fp32", weights.NewSynthetic().View(), false},
		{"fp16", weights.NewSynthetic().View().Half(), false},
		{"bf16", weights.NewSynthetic().View().BF16(), true},
	} {
		a, err := NewAttention(c.w, cfg)
		if err != nil {
			t.Fatal(err)
		}
		g := gorgonia.NewGraph()
		x := gorgonia.NewTensor(g, tensor.Float32, 3, gorgonia.WithShape(1, 5, 16), gorgonia.WithName("x"))
		if _, err := a.Forward(x, nil); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, n := range g.AllNodes() {
			if op, ok := n.Op().(*Op); ok && op.name == "attention" {
				found = true
				if got := op.k.(attnK).BF16; got != c.want {
					t.Errorf("%s weights: attention BF16 = %v, want %v", c.name, got, c.want)
				}
			}
		}
		if !found {
			t.Errorf("%s weights: no attention op in the graph", c.name)
		}
	}
}
