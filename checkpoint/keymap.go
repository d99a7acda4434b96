package checkpoint

import (
	"fmt"
	"strconv"
	"strings"
)

// The three LDM prefixes of a single-file SD 1.x checkpoint.
const (
	unetPrefix = "model.diffusion_model."
	vaePrefix  = "first_stage_model."
	textPrefix = "cond_stage_model.transformer."
)

// keys is what the mapping asks of a file: whether a tensor (full LDM name) is present.
type keys interface{ Has(name string) bool }

// unetMap maps diffusers UNet names to LDM names (without the prefix). n is layers_per_block+1:
// the number of input_blocks per level (resnets, then a downsampler) and of output_blocks per
// level (resnets). The rule is the one of ../shared/golden/wave3/README.md:
//
//	down_blocks.i.resnets.j   → input_blocks.(n·i+j+1).0    down_blocks.i.attentions.j → input_blocks.(n·i+j+1).1
//	down_blocks.i.downsamplers.0.conv → input_blocks.(n·(i+1)).0.op
//	up_blocks.i.resnets.j     → output_blocks.(n·i+j).0     up_blocks.i.attentions.j   → output_blocks.(n·i+j).1
//	up_blocks.i.upsamplers.0  → output_blocks.(n·i+n−1).1, or .2 when that block has an attention
//	mid_block.resnets.0/attentions.0/resnets.1 → middle_block.0/1/2
type unetMap struct {
	n   int
	has func(ldm string) bool // LDM name without prefix
}

// resnetNames maps diffusers ResnetBlock2D children to LDM ResBlock children.
var resnetNames = map[string]string{
	"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0", "conv2": "out_layers.3",
	"time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection",
}

var unetTop = map[string]string{
	"conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
	"conv_norm_out": "out.0", "conv_out": "out.2",
}

// ldm returns the LDM name of the diffusers UNet tensor name, ok false when name is not one the
// SD 1.x UNet has.
func (m unetMap) ldm(name string) (string, bool) {
	for d, l := range unetTop {
		if rest, ok := strings.CutPrefix(name, d+"."); ok {
			return l + "." + rest, true
		}
	}
	p := strings.SplitN(name, ".", 5)
	if len(p) < 4 {
		return "", false
	}
	resnet := func(block string, rest []string) (string, bool) {
		if len(rest) < 2 {
			return "", false
		}
		r, ok := resnetNames[rest[0]]
		if !ok {
			return "", false
		}
		return block + ".0." + r + "." + strings.Join(rest[1:], "."), true
	}
	switch p[0] {
	case "mid_block":
		k, err := strconv.Atoi(p[2])
		if err != nil || k < 0 {
			return "", false
		}
		switch {
		case p[1] == "resnets" && k <= 1:
			r, ok := resnetNames[p[3]]
			if !ok || len(p) < 5 {
				return "", false
			}
			return fmt.Sprintf("middle_block.%d.%s.%s", 2*k, r, p[4]), true
		case p[1] == "attentions" && k == 0:
			return "middle_block.1." + strings.Join(p[3:], "."), true
		}
		return "", false
	case "down_blocks", "up_blocks":
	default:
		return "", false
	}
	i, err1 := strconv.Atoi(p[1])
	j, err2 := strconv.Atoi(p[3])
	if err1 != nil || err2 != nil || i < 0 || j < 0 {
		return "", false
	}
	rest := strings.Split(strings.Join(p[4:], "."), ".")
	n := m.n
	if p[0] == "down_blocks" {
		block := fmt.Sprintf("input_blocks.%d", n*i+j+1)
		switch {
		case p[2] == "resnets" && j < n-1:
			return resnet(block, rest)
		case p[2] == "attentions" && j < n-1:
			return block + ".1." + strings.Join(rest, "."), true
		case p[2] == "downsamplers" && j == 0 && len(rest) == 2 && rest[0] == "conv":
			return fmt.Sprintf("input_blocks.%d.0.op.%s", n*(i+1), rest[1]), true
		}
		return "", false
	}
	block := fmt.Sprintf("output_blocks.%d", n*i+j)
	switch {
	case p[2] == "resnets" && j < n:
		return resnet(block, rest)
	case p[2] == "attentions" && j < n:
		return block + ".1." + strings.Join(rest, "."), true
	case p[2] == "upsamplers" && j == 0 && len(rest) == 2 && rest[0] == "conv":
		last := fmt.Sprintf("output_blocks.%d", n*i+n-1)
		if m.has(last + ".2.conv.weight") {
			return last + ".2.conv." + rest[1], true
		}
		return last + ".1.conv." + rest[1], true
	}
	return "", false
}

// vaeMap maps diffusers AutoencoderKL names to LDM names (without the prefix); levels is the
// number of resolution levels (len(block_out_channels)), since LDM numbers the decoder's up
// blocks from the bottom.
type vaeMap struct{ levels int }

var vaeResnetNames = map[string]string{"conv_shortcut": "nin_shortcut"}

// vaeAttnNames maps both generations of diffusers' VAE attention names to LDM's.
var vaeAttnNames = map[string]string{
	"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out",
	"query": "q", "key": "k", "value": "v", "proj_attn": "proj_out",
}

func (m vaeMap) ldm(name string) (string, bool) {
	switch {
	case strings.HasPrefix(name, "quant_conv."), strings.HasPrefix(name, "post_quant_conv."):
		return name, true
	}
	half, rest, ok := strings.Cut(name, ".")
	if !ok || (half != "encoder" && half != "decoder") {
		return "", false
	}
	for _, top := range []string{"conv_in.", "conv_out."} {
		if strings.HasPrefix(rest, top) {
			return name, true
		}
	}
	if r, ok := strings.CutPrefix(rest, "conv_norm_out."); ok {
		return half + ".norm_out." + r, true
	}
	resnet := func(block, r string) (string, bool) {
		child, param, ok := strings.Cut(r, ".")
		if !ok {
			return "", false
		}
		if l, ok := vaeResnetNames[child]; ok {
			child = l
		}
		return block + "." + child + "." + param, true
	}
	if r, ok := strings.CutPrefix(rest, "mid_block."); ok {
		p := strings.SplitN(r, ".", 3)
		if len(p) < 3 {
			return "", false
		}
		switch {
		case p[0] == "resnets" && (p[1] == "0" || p[1] == "1"):
			k, _ := strconv.Atoi(p[1])
			return resnet(fmt.Sprintf("%s.mid.block_%d", half, k+1), p[2])
		case p[0] == "attentions" && p[1] == "0":
			i := strings.LastIndexByte(p[2], '.')
			if i < 0 {
				return "", false
			}
			l, ok := vaeAttnNames[p[2][:i]]
			if !ok {
				return "", false
			}
			return half + ".mid.attn_1." + l + p[2][i:], true
		}
		return "", false
	}
	blocks, sampler, ldmSampler := "down_blocks.", "downsamplers.0.", "downsample."
	if half == "decoder" {
		blocks, sampler, ldmSampler = "up_blocks.", "upsamplers.0.", "upsample."
	}
	r, ok := strings.CutPrefix(rest, blocks)
	if !ok {
		return "", false
	}
	is, r, ok := strings.Cut(r, ".")
	i, err := strconv.Atoi(is)
	if !ok || err != nil || i < 0 || i >= m.levels {
		return "", false
	}
	if half == "decoder" {
		i = m.levels - 1 - i
	}
	level := fmt.Sprintf("encoder.down.%d", i)
	if half == "decoder" {
		level = fmt.Sprintf("decoder.up.%d", i)
	}
	if s, ok := strings.CutPrefix(r, sampler); ok {
		return level + "." + ldmSampler + s, true
	}
	if s, ok := strings.CutPrefix(r, "resnets."); ok {
		js, s, ok := strings.Cut(s, ".")
		if _, err := strconv.Atoi(js); !ok || err != nil {
			return "", false
		}
		return resnet(level+".block."+js, s)
	}
	return "", false
}
