package unet

import (
	"fmt"

	"github.com/smallsd/smallsd/internal/nn"
	"gorgonia.org/gorgonia"
)

// transformer2D is diffusers' Transformer2DModel (built by nn), run here step by step so that
// its inner modules can be tapped: norm, proj_in, transformer_blocks.<i> and, inside a block,
// attn1, attn2 and ff (each before its residual add, as the reference recorded them).
type transformer2D struct {
	*nn.Transformer2DModel
}

func (t *transformer2D) forward(x, text *gorgonia.Node, tp tapper) (*gorgonia.Node, error) {
	xs := x.Shape()
	if len(xs) != 4 {
		return nil, fmt.Errorf("unet: %s: input shape %v, want N×C×H×W", tp.prefix, xs)
	}
	height, width := xs[2], xs[3]
	h, err := t.Norm.Forward(x)
	if err != nil {
		return nil, err
	}
	tp.put("norm", h)
	if t.ProjIn != nil { // use_linear_projection: permute, then linear
		if h, err = nn.ToTokens(h); err == nil {
			h, err = t.ProjIn.Forward(h)
		}
		tp.put("proj_in", h)
	} else {
		if h, err = t.ProjInConv.Forward(h); err == nil {
			tp.put("proj_in", h)
			h, err = nn.ToTokens(h)
		}
	}
	for i, b := range t.TransformerBlocks {
		if err != nil {
			break
		}
		h, err = basicTransformerBlock(b, h, text, tp.sub(fmt.Sprintf("transformer_blocks.%d", i)))
	}
	if err != nil {
		return nil, err
	}
	if t.ProjOut != nil {
		if h, err = t.ProjOut.Forward(h); err == nil {
			h, err = nn.FromTokens(h, height, width)
		}
	} else {
		if h, err = nn.FromTokens(h, height, width); err == nil {
			h, err = t.ProjOutConv.Forward(h)
		}
	}
	if err == nil {
		h, err = nn.Add(h, x)
	}
	if err != nil {
		return nil, err
	}
	tp.put("", h)
	return h, nil
}

// basicTransformerBlock is BasicTransformerBlock.forward: self-attention, cross-attention on
// the text states, GEGLU feed-forward, each on a layer-normed input and added to the stream.
func basicTransformerBlock(b *nn.BasicTransformerBlock, x, text *gorgonia.Node, tp tapper) (*gorgonia.Node, error) {
	h, err := b.Norm1.Forward(x)
	if err == nil {
		h, err = b.Attn1.Forward(h, nil)
	}
	tp.put("attn1", h)
	if err == nil {
		x, err = nn.Add(h, x)
	}
	if err == nil {
		h, err = b.Norm2.Forward(x)
	}
	if err == nil {
		h, err = b.Attn2.Forward(h, text)
	}
	tp.put("attn2", h)
	if err == nil {
		x, err = nn.Add(h, x)
	}
	if err == nil {
		h, err = b.Norm3.Forward(x)
	}
	if err == nil {
		h, err = b.FF.Forward(h)
	}
	tp.put("ff", h)
	if err == nil {
		x, err = nn.Add(h, x)
	}
	if err != nil {
		return nil, err
	}
	tp.put("", x)
	return x, nil
}
