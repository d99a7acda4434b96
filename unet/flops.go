package unet

import "fmt"

// FLOPs returns the floating-point operations of one forward on a batch×in_channels×h×w
// sample with textLen text tokens, counting 2 per multiply-add of the convolutions, linear
// layers and attention products (norms and element-wise ops are left out: they are <1%).
func (c Config) FLOPs(batch, h, w, textLen int) float64 {
	var total float64
	for _, p := range c.flopsByPart(batch, h, w, textLen) {
		total += p.flops
	}
	return total
}

type partFLOPs struct {
	name  string // diffusers module path: "conv_in", "down_blocks.0", …, "conv_out" (with the norm)
	flops float64
}

// flopsByPart splits FLOPs by top-level module (the time embedding goes with conv_in).
func (c Config) flopsByPart(batch, h, w, textLen int) []partFLOPs {
	var parts []partFLOPs
	var flops float64
	mark := func(name string) {
		parts = append(parts, partFLOPs{name, flops})
		flops = 0
	}
	n := len(c.BlockOutChannels)
	ch := c.BlockOutChannels
	b := float64(batch)
	conv := func(in, out, k, ho, wo int) float64 { return 2 * b * float64(in*out*k*k) * float64(ho*wo) }
	linear := func(tokens, in, out int) float64 { return 2 * b * float64(tokens) * float64(in) * float64(out) }
	temb := c.timeEmbedDim()
	resnet := func(in, out, hh, ww int) float64 {
		f := conv(in, out, 3, hh, ww) + conv(out, out, 3, hh, ww) + linear(1, temb, out)
		if in != out {
			f += conv(in, out, 1, hh, ww)
		}
		return f
	}
	transformer := func(level, channels, hh, ww int) float64 {
		tok, d, cross := hh*ww, channels, c.CrossAttentionDim.At(level)
		f := 2 * conv(channels, channels, 1, hh, ww) // proj_in, proj_out (1×1 conv or linear alike)
		for l := 0; l < c.TransformerLayersPerBlock.At(level); l++ {
			f += 4*linear(tok, d, d) + 2*linear(tok, d, d)*float64(tok)/float64(d) // attn1: q,k,v,out; q·kᵀ, p·v
			f += 2*linear(tok, d, d) + 2*linear(textLen, cross, d)                 // attn2: q, out; k, v
			f += 2 * linear(tok, d, d) * float64(textLen) / float64(d)             // attn2 products
			f += linear(tok, d, 8*d) + linear(tok, 4*d, d)                         // GEGLU feed-forward
		}
		return f
	}
	flops = conv(c.InChannels, ch[0], c.ConvInKernel, h, w) + 2*float64(batch)*float64(ch[0]*temb+temb*temb)
	mark("conv_in")
	sizes := [][2]int{{h, w}}
	hh, ww := h, w
	for i, typ := range c.DownBlockTypes {
		in := ch[max(i-1, 0)]
		for l := 0; l < c.LayersPerBlock.At(i); l++ {
			flops += resnet(in, ch[i], hh, ww)
			if typ == CrossAttnDownBlock2D {
				flops += transformer(i, ch[i], hh, ww)
			}
			in = ch[i]
		}
		if i < n-1 {
			pad := c.DownsamplePadding
			hh, ww = (hh+2*pad-3)/2+1, (ww+2*pad-3)/2+1
			if pad == 0 {
				hh, ww = (hh+1-3)/2+1, (ww+1-3)/2+1
			}
			flops += conv(ch[i], ch[i], 3, hh, ww)
		}
		sizes = append(sizes, [2]int{hh, ww})
		mark(fmt.Sprintf("down_blocks.%d", i))
	}
	if c.MidBlockType != "" {
		flops += 2*resnet(ch[n-1], ch[n-1], hh, ww) + transformer(n-1, ch[n-1], hh, ww)
		mark("mid_block")
	}
	for i, typ := range c.UpBlockTypes {
		j := n - 1 - i
		prev, skipIn := ch[min(j+1, n-1)], ch[max(j-1, 0)]
		layers := c.LayersPerBlock.At(j) + 1
		for l := 0; l < layers; l++ {
			in, skip := ch[j], ch[j]
			if l == 0 {
				in = prev
			}
			if l == layers-1 {
				skip = skipIn
			}
			flops += resnet(in+skip, ch[j], hh, ww)
			if typ == CrossAttnUpBlock2D {
				flops += transformer(j, ch[j], hh, ww)
			}
		}
		if i < n-1 {
			next := sizes[j-1] // the resolution of the level above
			hh, ww = next[0], next[1]
			flops += conv(ch[j], ch[j], 3, hh, ww)
		}
		mark(fmt.Sprintf("up_blocks.%d", i))
	}
	flops = conv(ch[0], c.OutChannels, c.ConvOutKernel, hh, ww)
	mark("conv_out")
	return parts
}
