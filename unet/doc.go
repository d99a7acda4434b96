// Package unet is diffusers' UNet2DConditionModel for the Stable Diffusion 1.x family (and
// configs built from the same blocks), driven by the unet folder's config.json: the real
// small-sd UNet (layers_per_block 1), SD 1.5 (2), SD 2.x-style linear projections and
// per-block head counts, with or without a mid block.
//
// The model is time embedding (sinusoidal → linear → SiLU → linear), conv_in, down blocks
// (ResnetBlock2D with the time embedding, Transformer2D with self-attention, cross-attention
// on the text hidden states and a GEGLU feed-forward, strided-conv downsampling), the mid
// block, up blocks taking the down path's states as concatenated skip connections (nearest ×2
// upsampling + conv), then GroupNorm → SiLU → conv_out. Files follow diffusers' modules:
// unet_2d_condition.go (the model), unet_2d_blocks.go (down/mid/up blocks). Layers, including
// Transformer2DModel and its tap hook, come from internal/nn; checkpoint names appear only
// where a block is built.
//
// Use:
//
//	m, err := unet.Load("model/unet")                       // config.json + safetensors or .bin
//	noise, err := m.Forward(ctx, latents, 981, textStates)  // N×4×h×w, N×77×768 → N×4×h×w
//
// A graph is compiled per input shape on first use and cached; the model is safe for
// concurrent use. ForwardTaps returns intermediate outputs by diffusers module path, which is
// how the tests find the block where a mismatch starts.
//
// Config keys that would change the computation in ways this package does not implement
// (class or addition embeddings, encoder_hid_dim, dual or only cross-attention, fourier
// time embeddings, scale-shift resnets, …) are errors naming the key. attention_head_dim is
// read as diffusers 0.21 reads it in SD 1.x configs: the number of heads per block.
package unet
