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

func TestParseKeyFormats(t *testing.T) {
	for key, want := range map[string][3]string{
		"lora_unet_mid_block_attentions_0_proj_in.lora_up.weight":                                      {UNet, "mid_block_attentions_0_proj_in", "up"},
		"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down.weight": {UNet, "down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0", "down"},
		"text_encoder.text_model.encoder.layers.1.mlp.fc2.lora_A.weight":                               {TextEncoder, "text_model_encoder_layers_1_mlp_fc2", "down"},
		"unet.up_blocks.1.attentions.0.proj_out.lora_B.weight":                                         {UNet, "up_blocks_1_attentions_0_proj_out", "up"},
	} {
		comp, module, p, ok := parseKey(key)
		if !ok || comp != want[0] || module != want[1] || [...]string{"down", "up", "alpha"}[p] != want[2] {
			t.Errorf("%s → %q %q %d %v", key, comp, module, p, ok)
		}
	}
	for _, key := range []string{"lora_unet_x.hada_w1_a", "lora_te1_text_model_x.lora_down.weight", "unet.x.dora_scale"} {
		if _, _, _, ok := parseKey(key); ok {
			t.Errorf("%s accepted", key)
		}
	}
}
