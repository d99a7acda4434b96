// Package safety is the Stable Diffusion safety checker, as diffusers runs it after every
// image (StableDiffusionSafetyChecker, v0.21.4) with the image preprocessing of transformers'
// CLIPImageProcessor (v4.33).
//
// An image is converted to RGB, resized so its shortest edge is size.shortest_edge with
// PIL's bicubic filter (reproduced bit for bit by package internal/pilresize), centre-cropped, rescaled and normalised; the
// CLIP vision tower (package clip's VisionModel: ViT-L/14 in the real checker) and
// visual_projection embed it; the embedding's cosine similarity with each of the checkpoint's
// hidden concept embeddings, less the concept's threshold and rounded to 3 decimals, flags the
// image when positive. When one of the "special care" concepts fires first, every concept's
// threshold is lowered by 0.01. Flagged images are returned black.
//
// Typical use, with a model folder that has safety_checker/ and feature_extractor/:
//
//	c, err := safety.Load(filepath.Join(model, "safety_checker"), filepath.Join(model, "feature_extractor"))
//	…
//	defer c.Close()
//	results, err := c.Filter(ctx, images) // flagged images are now black
//
// Package pipeline does this for every generated image unless told not to.
package safety
