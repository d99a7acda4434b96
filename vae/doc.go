// Package vae is the decoder of diffusers' AutoencoderKL (the Stable Diffusion VAE): it turns
// latents into images.
//
// The decoder is built from the vae folder's config.json (block_out_channels,
// layers_per_block, latent_channels, out_channels, norm_num_groups, act_fn; up_block_types
// must all be UpDecoderBlock2D) and its weights: post_quant_conv, then conv_in, the mid block
// (resnet, single-head spatial attention, resnet), one UpDecoderBlock2D per entry of
// block_out_channels (layers_per_block+1 resnets, nearest ×2 upsampling and a convolution
// except in the last), GroupNorm + SiLU and conv_out. The encoder's tensors are ignored.
//
// Typical use, after the denoising loop:
//
//	d, err := vae.LoadDecoder(filepath.Join(model, "vae"))
//	…
//	z := latents scaled by 1/d.Config().ScalingFactor
//	x, err := d.Decode(ctx, z)      // N×3×8h×8w in about [-1, 1]
//	imgs, err := vae.ToImages(x)    // []*image.NRGBA, as diffusers' postprocess rounds them
//
// Decode runs one compiled program per latent size (see package internal/nn), one sample
// at a time, so memory does not grow with the batch. ForwardTaps returns the outputs of
// inner modules by their diffusers path, for tests.
package vae
