// Package vae is diffusers' AutoencoderKL (the Stable Diffusion VAE): the decoder turns latents
// into images, the encoder (for img2img and inpainting) images into a latent distribution; and
// AutoencoderTiny (TAESD), its small distilled stand-in.
//
// The decoder is built from the vae folder's config.json (block_out_channels,
// layers_per_block, latent_channels, out_channels, norm_num_groups, act_fn; up_block_types
// must all be UpDecoderBlock2D) and its weights: post_quant_conv, then conv_in, the mid block
// (resnet, single-head spatial attention, resnet), one UpDecoderBlock2D per entry of
// block_out_channels (layers_per_block+1 resnets, nearest ×2 upsampling and a convolution
// except in the last), GroupNorm + SiLU and conv_out. The Encoder mirrors it (conv_in, one
// DownEncoderBlock2D per level with layers_per_block resnets and a stride-2 convolution except in
// the last, the mid block, GroupNorm + SiLU, conv_out to 2·latent_channels, quant_conv) and
// returns a LatentDist, whose Sample draws from a torch-compatible generator as diffusers'
// latent_dist.sample does. Each half reads only its own tensors.
//
// Typical use, after the denoising loop:
//
//	d, err := vae.LoadDecoder(filepath.Join(model, "vae"))
//	…
//	z := latents scaled by 1/d.Config().ScalingFactor
//	x, err := d.Decode(ctx, z)      // N×3×8h×8w in about [-1, 1]
//	imgs, err := vae.ToImages(x)    // []*image.NRGBA, as diffusers' postprocess rounds them
//
// For img2img, x in [-1, 1] (N×3×H×W):
//
//	e, err := vae.LoadEncoder(filepath.Join(model, "vae"))
//	dist, err := e.Encode(ctx, x)
//	z := dist.Sample(gen)           // then × ScalingFactor
//
// Tiny is AutoencoderTiny (TAESD, e.g. madebyollin/taesd): a 2.4M-parameter distilled decoder
// and encoder of plain 3×3 convolutions and ReLUs whose latents are the diffusion latents as they
// are (scaling_factor 1; the decoder soft-clamps them with tanh(z/3)·3 itself). It decodes a
// 512×512 image with 141 GFLOP instead of the VAE's 2515, for previews or fast final images.
//
// Decode (and Encode) run one compiled program per latent (image) size (see package internal/nn), one sample
// at a time, so memory does not grow with the batch. ForwardTaps returns the outputs of
// inner modules by their diffusers path, for tests.
package vae
