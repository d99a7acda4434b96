package lora

import (
	"strings"
	"testing"
)

// FuzzParseKey: key parsing never panics, and what it accepts names a component and a module.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", "lora_te_text_model_encoder_layers_0_mlp_fc1.alpha",
		"unet.mid_block.attentions.0.proj_in.lora.up.weight", "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight",
		"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight",
		"unet.x.lora_A.weight", "lora_unet_.alpha", "unet..lora.up.weight", "lora_te1_x.hada_w1_a", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		comp, module, p, ok := parseKey(key)
		if !ok {
			return
		}
		if comp != UNet && comp != TextEncoder || module == "" || p < down || p > alpha {
			t.Fatalf("%q → %q %q %d", key, comp, module, p)
		}
		if strings.Contains(module, ".") {
			t.Fatalf("%q → module %q not flat", key, module)
		}
	})
}
