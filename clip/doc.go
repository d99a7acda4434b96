// Package clip is the Stable Diffusion 1.x text encoder: transformers' CLIPTextModel (the text
// tower of CLIP ViT-L/14), turning token ids into the hidden states the UNet attends to.
//
// The model is built from the text_encoder folder's config.json (hidden_size,
// num_hidden_layers, num_attention_heads, intermediate_size, hidden_act quick_gelu or gelu,
// layer_norm_eps, max_position_embeddings, vocab_size) and its weights (safetensors, PyTorch
// .bin, or the fp16 variant): token and position embeddings, pre-LayerNorm transformer layers
// with causal self-attention and an MLP, and a final LayerNorm. It runs on the graphs and
// kernels of package internal/nn.
//
// Typical use, with ids from package tokenizer (77 per prompt, padded with the end-of-text id):
//
//	m, err := clip.Load(filepath.Join(model, "text_encoder"))
//	…
//	defer m.Close()
//	hidden, err := m.Encode(ctx, [][]int{uncondIDs, condIDs}) // 2×77×hidden_size
//
// EncodePooled also returns the pooled output (not used by SD 1.x); ForwardTaps returns the
// outputs of inner modules by their transformers path, for tests.
package clip
