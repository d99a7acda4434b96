package checkpoint

import (
	"fmt"

	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/unet"
	"github.com/smallsd/smallsd/vae"
)

// shape returns a tensor's shape by its full LDM name, or an error naming it.
func (f *File) shape(name string, dims int) ([]int, error) {
	s, ok := f.store.Shape(name)
	if !ok {
		return nil, fmt.Errorf("checkpoint: %s: tensor %q not found (needed to infer the config)", f.path, name)
	}
	if len(s) != dims {
		return nil, fmt.Errorf("checkpoint: %s: tensor %q has shape %v, want %d dimensions", f.path, name, s, dims)
	}
	return s, nil
}

// UNetConfig returns SD 1.x's UNet config (diffusers' UNet2DConditionModel defaults, 512×512,
// 8 attention heads, 32 norm groups) with what the tensors show put in: layers_per_block (from
// the block numbering), block_out_channels, in/out channels, which levels have attention, the
// mid block, cross_attention_dim and transformer_layers_per_block. An SD 2.x UNet (linear
// projections, cross_attention_dim 1024) is an error saying so. Values the tensors cannot show
// (attention heads, norm groups) keep SD 1.x's; take a folder's config.json when they differ.
func (f *File) UNetConfig() (unet.Config, error) {
	c := unet.DefaultConfig()
	c.SampleSize = 64
	n := f.unet.n
	c.LayersPerBlock = unet.IntList{n - 1}
	p := func(s string, a ...any) string { return unetPrefix + fmt.Sprintf(s, a...) }
	conv, err := f.shape(p("input_blocks.0.0.weight"), 4)
	if err != nil {
		return c, err
	}
	c.InChannels = conv[1]
	out, err := f.shape(p("out.2.weight"), 4)
	if err != nil {
		return c, err
	}
	c.OutChannels = out[0]
	c.BlockOutChannels, c.DownBlockTypes, c.UpBlockTypes = nil, nil, nil
	cross := 0
	for i := 0; f.store.Has(p("input_blocks.%d.0.in_layers.0.weight", n*i+1)); i++ {
		s, err := f.shape(p("input_blocks.%d.0.out_layers.3.weight", n*i+1), 4)
		if err != nil {
			return c, err
		}
		c.BlockOutChannels = append(c.BlockOutChannels, s[0])
		typ := unet.DownBlock2D
		if f.store.Has(p("input_blocks.%d.1.proj_in.weight", n*i+1)) {
			typ = unet.CrossAttnDownBlock2D
			pin, _ := f.store.Shape(p("input_blocks.%d.1.proj_in.weight", n*i+1))
			if len(pin) == 2 {
				return c, fmt.Errorf("checkpoint: %s: the UNet's attention blocks use linear projections (SD 2.x); only SD 1.x is supported", f.path)
			}
			k, err := f.shape(p("input_blocks.%d.1.transformer_blocks.0.attn2.to_k.weight", n*i+1), 2)
			if err != nil {
				return c, err
			}
			cross = k[1]
			t := 0
			for f.store.Has(p("input_blocks.%d.1.transformer_blocks.%d.attn1.to_q.weight", n*i+1, t)) {
				t++
			}
			c.TransformerLayersPerBlock = unet.IntList{t}
		}
		c.DownBlockTypes = append(c.DownBlockTypes, typ)
	}
	levels := len(c.BlockOutChannels)
	if levels == 0 {
		return c, fmt.Errorf("checkpoint: %s: no model.diffusion_model.input_blocks.1.0 resnet", f.path)
	}
	for i := 0; i < levels; i++ {
		typ := unet.UpBlock2D
		if f.store.Has(p("output_blocks.%d.1.proj_in.weight", n*i)) {
			typ = unet.CrossAttnUpBlock2D
		}
		c.UpBlockTypes = append(c.UpBlockTypes, typ)
	}
	if !f.store.Has(p("middle_block.0.in_layers.0.weight")) {
		c.MidBlockType = ""
	}
	if cross == 0 {
		return c, fmt.Errorf("checkpoint: %s: the UNet has no cross-attention (attn2.to_k)", f.path)
	}
	if cross == 1024 {
		return c, fmt.Errorf("checkpoint: %s: the UNet's cross_attention_dim is 1024 (SD 2.x); only SD 1.x is supported", f.path)
	}
	c.CrossAttentionDim = unet.IntList{cross}
	c.NormNumGroups = groups(c.BlockOutChannels)
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("checkpoint: %s: inferred UNet config: %w", f.path, err)
	}
	return c, nil
}

// VAEConfig returns SD 1.x's AutoencoderKL config (scaling factor 0.18215, 32 norm groups)
// with block_out_channels, layers_per_block and the channel counts taken from the tensors.
func (f *File) VAEConfig() (vae.Config, error) {
	c := vae.DefaultConfig()
	c.SampleSize = 512
	p := func(s string, a ...any) string { return vaePrefix + fmt.Sprintf(s, a...) }
	c.BlockOutChannels, c.DownBlockTypes, c.UpBlockTypes = nil, nil, nil
	for k := 0; k < f.vae.levels; k++ {
		s, err := f.shape(p("decoder.up.%d.block.0.conv2.weight", k), 4)
		if err != nil {
			return c, err
		}
		c.BlockOutChannels = append(c.BlockOutChannels, s[0])
		c.DownBlockTypes = append(c.DownBlockTypes, "DownEncoderBlock2D")
		c.UpBlockTypes = append(c.UpBlockTypes, "UpDecoderBlock2D")
	}
	j := 0
	for f.store.Has(p("decoder.up.0.block.%d.conv1.weight", j)) {
		j++
	}
	c.LayersPerBlock = j - 1
	c.NormNumGroups = groups(c.BlockOutChannels)
	pq, err := f.shape(p("post_quant_conv.weight"), 4)
	if err != nil {
		return c, err
	}
	c.LatentChannels = pq[0]
	out, err := f.shape(p("decoder.conv_out.weight"), 4)
	if err != nil {
		return c, err
	}
	c.OutChannels = out[0]
	if in, ok := f.store.Shape(p("encoder.conv_in.weight")); ok && len(in) == 4 {
		c.InChannels = in[1]
	} else {
		c.InChannels = c.OutChannels
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("checkpoint: %s: inferred VAE config: %w", f.path, err)
	}
	return c, nil
}

// TextEncoderConfig returns CLIP ViT-L/14's text config (SD 1.x's: quick_gelu, 64-wide heads,
// bos 49406, eos 49407, pad 1) with the vocabulary, width, depth, MLP width and positions taken
// from the tensors.
func (f *File) TextEncoderConfig() (clip.Config, error) {
	c := clip.DefaultConfig()
	p := func(s string, a ...any) string { return textPrefix + f.textModel + fmt.Sprintf(s, a...) }
	tok, err := f.shape(p("embeddings.token_embedding.weight"), 2)
	if err != nil {
		return c, err
	}
	c.VocabSize, c.HiddenSize = tok[0], tok[1]
	pos, err := f.shape(p("embeddings.position_embedding.weight"), 2)
	if err != nil {
		return c, err
	}
	c.MaxPositionEmbeddings = pos[0]
	fc1, err := f.shape(p("encoder.layers.0.mlp.fc1.weight"), 2)
	if err != nil {
		return c, err
	}
	c.IntermediateSize = fc1[0]
	c.NumHiddenLayers = 0
	for f.store.Has(p("encoder.layers.%d.mlp.fc1.weight", c.NumHiddenLayers)) {
		c.NumHiddenLayers++
	}
	c.ProjectionDim = c.HiddenSize
	c.NumAttentionHeads = max(1, c.HiddenSize/64)
	c.PadTokenID = 1
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("checkpoint: %s: inferred text encoder config: %w", f.path, err)
	}
	return c, nil
}

// groups returns SD 1.x's 32 norm groups, or for (test-sized) models whose widths 32 does not
// divide, the largest power of two that divides them all.
func groups(widths []int) int {
	g := 32
	for _, w := range widths {
		for g > 1 && w%g != 0 {
			g /= 2
		}
	}
	return g
}
