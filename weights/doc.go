// Package weights reads Stable Diffusion model folders in diffusers layout and the tensors in
// them.
//
// A model folder has a model_index.json naming its components (unet, vae, text_encoder, …);
// each component folder has a config.json, read into the caller's own struct with
// ReadComponentConfig, and a weights file: safetensors (F32, F16 or BF16; memory-mapped where
// the OS allows) or a PyTorch .bin (zip or legacy pickle format). Open picks the file; a Store
// hands out float32 *tensor.Dense values by checkpoint name.
//
// Model code reads weights through a View, a name prefix over a Source (a *Store is one):
// w.Sub("down_blocks").Sub("0").Tensor("conv1.weight", 320, 320, 3, 3) is strict — a missing
// tensor or a shape mismatch is an error naming the file, the full tensor name, and the
// expected and found shapes. Tensors the model never asks for are allowed and reported by
// (*Store).Unused.
//
// Half weights (opt-in): a Store opened WithHalf (or a View made with View.Half) reports
// PreferHalf, and model layers then fetch their Linear and Conv2d weight matrices with TensorHalf
// as IEEE half bits (F16 files as stored, aliasing the mapping; other files rounded to nearest
// even at load), halving weight memory. WithBF16 (View.BF16, PreferBF16, TensorBF16) is the same
// with bfloat16 bits (BF16 files as stored; others rounded to nearest even). LoadedBytes reports
// what a Store has handed out.
//
// NewSynthetic makes a Store that answers any name and shape with the deterministic weights of
// testdata/SYNTHETIC.md and records every request, so tests can build the full-size models
// without the real checkpoints and compare what they asked for against a manifest
// (ReadManifest, DiffManifest).
package weights
