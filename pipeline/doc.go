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
// Image-to-image and inpainting (diffusers' StableDiffusionImg2ImgPipeline and, with a regular
// 4-channel UNet, StableDiffusionInpaintPipeline) are the same Generate with Request.Init set,
// and Request.Mask for inpainting:
//
//	res, err := p.Generate(ctx, pipeline.Request{Prompt: "a watercolor", Init: img, Strength: 0.6})
//	res, err := p.Generate(ctx, pipeline.Request{Prompt: "a red cube", Init: img, Mask: mask})
//
// The image is read as PIL's convert("RGB") sees it (grey replicated, alpha dropped), mapped to
// [-1, 1] (x/255·2 − 1 in float32) and encoded by the VAE encoder, loaded on first use; the
// generator then draws, in diffusers' order, the encoder's latent sample (× scaling_factor; one
// for all NumImages), the noise, and for inpainting the masked image's sample (its value unused
// by a 4-channel UNet). Strength s runs the last int(Steps·s) steps of the schedule
// (scheduler.StartIndex; PNDM makes its Heun-like step at the first of them); the initial
// latents are the image's noised to the first of them (scheduler add_noise), or for inpainting at
// strength 1 pure noise × init_noise_sigma. The mask is binarised at luma 128 (PIL's "L",
// /255 ≥ 0.5 repaints) and reduced to the latent grid by nearest neighbour (the pixel at
// (8i, 8j)); after every step the latents outside it become the image's latents noised to the
// next timestep (the clean ones after the last). The images are diffusers' 8-bit output: the
// kept region as the VAE reproduces it, unless Request.PasteOriginal copies the original pixels
// there. The images are Width×Height, by default Init's size rounded down to a multiple of 8 as
// diffusers' VaeImageProcessor does; Init and Mask (which must be Init's size) are resized to it
// with PIL's Lanczos filter (package internal/pilresize), the mask after its conversion to "L"
// and before the binarisation. (diffusers' inpainting pipeline defaults to 512×512 instead.)
//
// Load reads a model folder in diffusers layout (model_index.json, tokenizer, text_encoder, unet,
// vae, scheduler; safetensors or PyTorch .bin; optionally the fp16 variant) or downloads a Hub
// repository through package hub. New assembles a Pipeline from components built elsewhere, for
// example full-size models with synthetic weights for benchmarks.
//
// Subpackage pngmeta writes the generation parameters into PNG files in the form
// AUTOMATIC1111's web UI uses, and reads them back.
package pipeline
