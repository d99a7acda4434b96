// Package pipeline is text-to-image generation with a Stable Diffusion 1.x model, doing what
// diffusers' StableDiffusionPipeline (v0.21.4) does when it runs on the CPU in float32, so a
// seed gives the image diffusers gives:
//
//	p, err := pipeline.Load("OFA-Sys/small-stable-diffusion-v0") // or a model folder
//	…
//	res, err := p.Generate(ctx, pipeline.Request{Prompt: "a apple, 4k", Seed: 42})
//	…
//	png.Encode(f, res.Images[0])
//
// Generate tokenizes the prompt and the negative prompt (77 ids each, padded with
// <|endoftext|>), encodes them with the CLIP text encoder, draws the initial latents with
// torch's CPU generator (torch.randn((n, 4, h/8, w/8)) for all n images at once, times the
// scheduler's init_noise_sigma), runs the scheduler's loop — with classifier-free guidance the
// UNet sees the batch concat[uncond, cond] and ε = ε_u + g·(ε_c − ε_u) in float32 — and decodes
// latents/scaling_factor with the VAE, rounding to 8 bits as diffusers' postprocess does.
//
// Load reads a model folder in diffusers layout (model_index.json, tokenizer, text_encoder, unet,
// vae, scheduler; safetensors or PyTorch .bin; optionally the fp16 variant) or downloads a Hub
// repository through package hub. New assembles a Pipeline from components built elsewhere, for
// example full-size models with synthetic weights for benchmarks.
//
// Subpackage pngmeta writes the generation parameters into PNG files in the form
// AUTOMATIC1111's web UI uses, and reads them back.
package pipeline
