// Package checkpoint reads single-file Stable Diffusion 1.x checkpoints: the one .safetensors
// or .ckpt most fine-tunes and merges are shared as, holding the UNet, VAE and text encoder
// under the original CompVis/LDM names (model.diffusion_model.*, first_stage_model.*,
// cond_stage_model.transformer.*).
//
// Open reads the file with package weights (safetensors memory-mapped; .ckpt as PyTorch zip or
// legacy pickles, tensors under "state_dict" or at the top, fp16 or fp32, without running any
// code from the pickle) and presents each model as a weights.View under the diffusers names the
// unet, vae and clip packages ask for, so they build from it unchanged:
//
//	f, err := checkpoint.Open("model.safetensors")
//	cfg, err := f.UNetConfig()
//	u, err := unet.New(cfg, f.UNet())
//
// One mapping, driven by the file: layers_per_block decides the LDM block numbering
// (input_blocks.(n·i+j+1), output_blocks.(n·i+j) with n = layers_per_block+1) and is read from
// where the first downsampler sits, so small-sd-like UNets (layers_per_block 1) and SD 1.x's
// (2) both map. The VAE's attention is reachable under both generations of diffusers names
// (to_q/to_k/to_v/to_out.0 and query/key/value/proj_attn), its 1×1-convolution weights reshaped.
// EMA weights (model_ema.*), noise-schedule buffers and anything else outside the three prefixes
// are ignored.
//
// The configs are SD 1.x's with what the tensors show filled in (UNetConfig, VAEConfig,
// TextEncoderConfig). SD 2.x (OpenCLIP text encoder, linear projections, 1024-wide
// cross-attention) and SDXL files are refused with an error saying so, as are LoRA files and
// diffusers component files.
package checkpoint
