// Package lora reads LoRA adapters for SD 1.x models and turns them into the low-rank updates
// the unet and clip packages apply per call.
//
// Load reads kohya-format files (lora_unet_* and lora_te_* keys with .lora_down.weight,
// .lora_up.weight and .alpha; linear layers and convolutions, "LoCon" included) and diffusers'
// own formats (unet.<module>.lora.down/up.weight, text_encoder.<module>.lora_linear_layer.down/
// up.weight, the PEFT lora_A/lora_B spelling, and the attention-processor keys), safetensors or
// PyTorch pickles. Every layer it patches computes
//
//	y = W·x + b + scale·(alpha/rank)·up(down(x))
//
// Combine merges the adapters of one request (each at its scale) into one Updates value per
// model, a rank-Σr update per patched layer with the scales folded into Up; unet.ForwardLoRA and
// clip.EncodeLoRA run it on the low-rank path in the graph, leaving the weights untouched. Fuse
// computes merged weights (W + scale·(alpha/rank)·Up·Down) for comparison.
//
// Not supported: LyCORIS variants beyond plain LoRA (LoHa, LoKr, IA³, DoRA, "lora_mid" Tucker
// decompositions) and SDXL adapters (lora_te1_/lora_te2_); their keys are an error listing them.
package lora
