package unet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/smallsd/smallsd/weights"
)

// Block types this package builds (diffusers' names).
const (
	CrossAttnDownBlock2D    = "CrossAttnDownBlock2D"
	DownBlock2D             = "DownBlock2D"
	CrossAttnUpBlock2D      = "CrossAttnUpBlock2D"
	UpBlock2D               = "UpBlock2D"
	UNetMidBlock2DCrossAttn = "UNetMidBlock2DCrossAttn"
)

// Config is the part of diffusers' UNet2DConditionModel config.json (v0.21.4 keys) that
// decides the computation of an SD 1.x UNet. Keys missing from the file take diffusers'
// defaults (DefaultConfig). Keys whose only supported value is diffusers' "off" value (class
// or addition embeddings, encoder_hid_dim, dual cross-attention, …) are kept so that Validate
// can reject a config that sets them, naming the key.
type Config struct {
	SampleSize        int      `json:"sample_size"` // informational: latent size the model was trained at
	InChannels        int      `json:"in_channels"`
	OutChannels       int      `json:"out_channels"`
	CenterInputSample bool     `json:"center_input_sample"`
	FlipSinToCos      bool     `json:"flip_sin_to_cos"`
	FreqShift         float64  `json:"freq_shift"`
	DownBlockTypes    []string `json:"down_block_types"`
	// MidBlockType is "UNetMidBlock2DCrossAttn", or "" for no mid block (null in JSON).
	MidBlockType        string   `json:"mid_block_type"`
	UpBlockTypes        []string `json:"up_block_types"`
	OnlyCrossAttention  BoolList `json:"only_cross_attention"` // must be false
	BlockOutChannels    []int    `json:"block_out_channels"`
	LayersPerBlock      IntList  `json:"layers_per_block"` // up blocks have one more resnet
	DownsamplePadding   int      `json:"downsample_padding"`
	MidBlockScaleFactor float64  `json:"mid_block_scale_factor"`
	Dropout             float64  `json:"dropout"` // identity at inference
	ActFn               string   `json:"act_fn"`
	NormNumGroups       int      `json:"norm_num_groups"`
	NormEps             float64  `json:"norm_eps"`
	CrossAttentionDim   IntList  `json:"cross_attention_dim"`
	// TransformerLayersPerBlock is the number of BasicTransformerBlocks per Transformer2DModel.
	TransformerLayersPerBlock IntList `json:"transformer_layers_per_block"`
	// AttentionHeadDim is, as diffusers 0.21 reads it, the number of attention heads per block
	// (num_attention_heads falls back to it); the head width is the block's channels divided by it.
	AttentionHeadDim    IntList `json:"attention_head_dim"`
	UseLinearProjection bool    `json:"use_linear_projection"`
	UpcastAttention     bool    `json:"upcast_attention"` // attention runs in float32 anyway
	// TimeEmbeddingDim overrides the time embedding width (default 4·block_out_channels[0]).
	TimeEmbeddingDim int `json:"time_embedding_dim"`
	ConvInKernel     int `json:"conv_in_kernel"`
	ConvOutKernel    int `json:"conv_out_kernel"`

	// Keys that must keep diffusers' default; any other value is an error naming the key.
	ResnetTimeScaleShift  string  `json:"resnet_time_scale_shift"` // "default"
	TimeEmbeddingType     string  `json:"time_embedding_type"`     // "positional"
	AttentionType         string  `json:"attention_type"`          // "default"
	NumAttentionHeads     IntList `json:"num_attention_heads"`     // null (diffusers 0.21 rejects it too)
	DualCrossAttention    bool    `json:"dual_cross_attention"`
	ClassEmbedType        string  `json:"class_embed_type"`
	NumClassEmbeds        int     `json:"num_class_embeds"`
	ClassEmbeddingsConcat bool    `json:"class_embeddings_concat"`
	AdditionEmbedType     string  `json:"addition_embed_type"`
	EncoderHidDim         int     `json:"encoder_hid_dim"`
	EncoderHidDimType     string  `json:"encoder_hid_dim_type"`
	TimeEmbeddingActFn    string  `json:"time_embedding_act_fn"`
	TimestepPostAct       string  `json:"timestep_post_act"`
	TimeCondProjDim       int     `json:"time_cond_proj_dim"`
	CrossAttentionNorm    string  `json:"cross_attention_norm"`
	// resnet_skip_time_act, resnet_out_scale_factor, mid_block_only_cross_attention and the
	// addition/projection embedding sizes only affect block types this package does not build,
	// so they are not read.
}

// DefaultConfig returns diffusers' UNet2DConditionModel defaults (v0.21.4): the SD 1.x UNet
// with layers_per_block 2 and cross_attention_dim 1280.
func DefaultConfig() Config {
	return Config{
		InChannels:                4,
		OutChannels:               4,
		FlipSinToCos:              true,
		DownBlockTypes:            []string{CrossAttnDownBlock2D, CrossAttnDownBlock2D, CrossAttnDownBlock2D, DownBlock2D},
		MidBlockType:              UNetMidBlock2DCrossAttn,
		UpBlockTypes:              []string{UpBlock2D, CrossAttnUpBlock2D, CrossAttnUpBlock2D, CrossAttnUpBlock2D},
		OnlyCrossAttention:        BoolList{false},
		BlockOutChannels:          []int{320, 640, 1280, 1280},
		LayersPerBlock:            IntList{2},
		DownsamplePadding:         1,
		MidBlockScaleFactor:       1,
		ActFn:                     "silu",
		NormNumGroups:             32,
		NormEps:                   1e-5,
		CrossAttentionDim:         IntList{1280},
		TransformerLayersPerBlock: IntList{1},
		AttentionHeadDim:          IntList{8},
		ConvInKernel:              3,
		ConvOutKernel:             3,
		ResnetTimeScaleShift:      "default",
		TimeEmbeddingType:         "positional",
		AttentionType:             "default",
	}
}

// notNull lists the keys for which JSON null would mean something this package cannot build
// (or that diffusers itself cannot build).
var notNull = []string{"in_channels", "out_channels", "down_block_types", "up_block_types", "block_out_channels",
	"layers_per_block", "norm_num_groups", "norm_eps", "cross_attention_dim", "attention_head_dim",
	"act_fn", "conv_in_kernel", "conv_out_kernel", "transformer_layers_per_block"}

// UnmarshalJSON reads a config.json: absent keys keep DefaultConfig's values, null means
// diffusers' None, and an error names the key that could not be read.
func (c *Config) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("unet: config: %w", err)
	}
	type plain Config // no UnmarshalJSON: plain decoding
	cfg := plain(DefaultConfig())
	// Decode key by key so that an error names its key.
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := raw[k]
		isNull := bytes.Equal(bytes.TrimSpace(v), []byte("null"))
		switch {
		case k == "mid_block_type" && isNull:
			cfg.MidBlockType = ""
			continue
		case isNull:
			for _, nn := range notNull {
				if k == nn {
					return fmt.Errorf("unet: config key %q: null is not supported", k)
				}
			}
			continue // None: the zero value, which means "off"
		}
		one, err := json.Marshal(map[string]json.RawMessage{k: v})
		if err != nil {
			return fmt.Errorf("unet: config key %q: %w", k, err)
		}
		if err := json.Unmarshal(one, &cfg); err != nil {
			return fmt.Errorf("unet: config key %q: %w", k, err)
		}
	}
	*c = Config(cfg)
	return nil
}

// LoadConfig reads a UNet config.json (a file, or a component folder holding config.json)
// and validates it.
func LoadConfig(path string) (Config, error) {
	var c Config
	if err := weights.ReadConfig(path, &c); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%w (in %s)", err, path)
	}
	return c, nil
}

// Validate reports the first value this package cannot build, naming its config key.
func (c Config) Validate() error {
	n := len(c.BlockOutChannels)
	bad := func(key string, format string, args ...any) error {
		return fmt.Errorf("unet: config key %q: %s", key, fmt.Sprintf(format, args...))
	}
	if n == 0 {
		return bad("block_out_channels", "empty")
	}
	if len(c.DownBlockTypes) != n {
		return bad("down_block_types", "%d blocks, block_out_channels has %d", len(c.DownBlockTypes), n)
	}
	if len(c.UpBlockTypes) != n {
		return bad("up_block_types", "%d blocks, block_out_channels has %d", len(c.UpBlockTypes), n)
	}
	for i, t := range c.DownBlockTypes {
		if t != CrossAttnDownBlock2D && t != DownBlock2D {
			return bad("down_block_types", "block %d is %q; supported: %s, %s", i, t, CrossAttnDownBlock2D, DownBlock2D)
		}
	}
	for i, t := range c.UpBlockTypes {
		if t != CrossAttnUpBlock2D && t != UpBlock2D {
			return bad("up_block_types", "block %d is %q; supported: %s, %s", i, t, CrossAttnUpBlock2D, UpBlock2D)
		}
	}
	if c.MidBlockType != "" && c.MidBlockType != UNetMidBlock2DCrossAttn {
		return bad("mid_block_type", "%q; supported: %s or null", c.MidBlockType, UNetMidBlock2DCrossAttn)
	}
	if c.InChannels < 1 {
		return bad("in_channels", "%d", c.InChannels)
	}
	if c.OutChannels < 1 {
		return bad("out_channels", "%d", c.OutChannels)
	}
	if c.NormNumGroups < 1 {
		return bad("norm_num_groups", "%d", c.NormNumGroups)
	}
	for i, ch := range c.BlockOutChannels {
		if ch < 1 {
			return bad("block_out_channels", "block %d has %d channels", i, ch)
		}
		if ch%c.NormNumGroups != 0 {
			return bad("norm_num_groups", "%d groups do not divide block %d's %d channels (block_out_channels)", c.NormNumGroups, i, ch)
		}
	}
	if !(c.NormEps > 0) {
		return bad("norm_eps", "%g", c.NormEps)
	}
	if c.ActFn != "silu" && c.ActFn != "swish" {
		return bad("act_fn", "%q; supported: silu", c.ActFn)
	}
	for _, l := range []struct {
		key string
		v   IntList
	}{{"layers_per_block", c.LayersPerBlock}, {"transformer_layers_per_block", c.TransformerLayersPerBlock},
		{"attention_head_dim", c.AttentionHeadDim}, {"cross_attention_dim", c.CrossAttentionDim}} {
		if len(l.v) != 1 && len(l.v) != n {
			return bad(l.key, "%d values for %d blocks", len(l.v), n)
		}
		for _, x := range l.v {
			if x < 1 {
				return bad(l.key, "value %d", x)
			}
		}
	}
	if len(c.OnlyCrossAttention) != 1 && len(c.OnlyCrossAttention) != n {
		return bad("only_cross_attention", "%d values for %d blocks", len(c.OnlyCrossAttention), n)
	}
	for _, b := range c.OnlyCrossAttention {
		if b {
			return bad("only_cross_attention", "true is not supported")
		}
	}
	for i := 0; i < n; i++ {
		// Block i's width and head count serve down block i, up block n-1-i and the mid block.
		if c.DownBlockTypes[i] == CrossAttnDownBlock2D || c.UpBlockTypes[n-1-i] == CrossAttnUpBlock2D ||
			(i == n-1 && c.MidBlockType != "") {
			if h := c.AttentionHeadDim.At(i); c.BlockOutChannels[i]%h != 0 {
				return bad("attention_head_dim", "block %d: %d channels do not split into %d heads", i, c.BlockOutChannels[i], h)
			}
		}
	}
	if c.DownsamplePadding < 0 {
		return bad("downsample_padding", "%d", c.DownsamplePadding)
	}
	if !(c.MidBlockScaleFactor > 0) {
		return bad("mid_block_scale_factor", "%g", c.MidBlockScaleFactor)
	}
	if c.TimeEmbeddingDim < 0 {
		return bad("time_embedding_dim", "%d", c.TimeEmbeddingDim)
	}
	if c.ConvInKernel < 1 || c.ConvInKernel%2 == 0 {
		return bad("conv_in_kernel", "%d; want an odd size", c.ConvInKernel)
	}
	if c.ConvOutKernel < 1 || c.ConvOutKernel%2 == 0 {
		return bad("conv_out_kernel", "%d; want an odd size", c.ConvOutKernel)
	}
	for _, s := range []struct{ key, got, want string }{
		{"resnet_time_scale_shift", c.ResnetTimeScaleShift, "default"},
		{"time_embedding_type", c.TimeEmbeddingType, "positional"},
		{"attention_type", c.AttentionType, "default"},
		{"class_embed_type", c.ClassEmbedType, ""},
		{"addition_embed_type", c.AdditionEmbedType, ""},
		{"encoder_hid_dim_type", c.EncoderHidDimType, ""},
		{"time_embedding_act_fn", c.TimeEmbeddingActFn, ""},
		{"timestep_post_act", c.TimestepPostAct, ""},
		{"cross_attention_norm", c.CrossAttentionNorm, ""},
	} {
		if s.got != s.want {
			want := fmt.Sprintf("%q", s.want)
			if s.want == "" {
				want = "null"
			}
			return bad(s.key, "%q is not supported (only %s)", s.got, want)
		}
	}
	if len(c.NumAttentionHeads) > 0 {
		return bad("num_attention_heads", "is set; diffusers 0.21 rejects it too (attention_head_dim gives the head count in SD 1.x configs)")
	}
	for _, s := range []struct {
		key string
		set bool
	}{
		{"dual_cross_attention", c.DualCrossAttention},
		{"num_class_embeds", c.NumClassEmbeds != 0},
		{"class_embeddings_concat", c.ClassEmbeddingsConcat},
		{"encoder_hid_dim", c.EncoderHidDim != 0},
		{"time_cond_proj_dim", c.TimeCondProjDim != 0},
	} {
		if s.set {
			return bad(s.key, "is set; only null/false is supported")
		}
	}
	return nil
}

// timeEmbedDim is the width of the time embedding fed to every resnet.
func (c Config) timeEmbedDim() int {
	if c.TimeEmbeddingDim > 0 {
		return c.TimeEmbeddingDim
	}
	return 4 * c.BlockOutChannels[0]
}

// IntList is a config value that diffusers accepts as one int for every block or as a list
// with one value per down block (attention_head_dim, layers_per_block, …).
type IntList []int

// At returns the value for block i.
func (l IntList) At(i int) int {
	if len(l) == 1 {
		return l[0]
	}
	return l[i]
}

// UnmarshalJSON accepts an int or a list of ints.
func (l *IntList) UnmarshalJSON(data []byte) error {
	var one int
	if err := json.Unmarshal(data, &one); err == nil {
		*l = IntList{one}
		return nil
	}
	var many []int
	if err := json.Unmarshal(data, &many); err != nil {
		return fmt.Errorf("want an int or a list of ints, got %s", data)
	}
	*l = many
	return nil
}

// MarshalJSON writes a single value as an int.
func (l IntList) MarshalJSON() ([]byte, error) {
	if len(l) == 1 {
		return json.Marshal(l[0])
	}
	return json.Marshal([]int(l))
}

// BoolList is a config value given as one bool for every block or a list of them
// (only_cross_attention).
type BoolList []bool

// UnmarshalJSON accepts a bool or a list of bools.
func (l *BoolList) UnmarshalJSON(data []byte) error {
	var one bool
	if err := json.Unmarshal(data, &one); err == nil {
		*l = BoolList{one}
		return nil
	}
	var many []bool
	if err := json.Unmarshal(data, &many); err != nil {
		return fmt.Errorf("want a bool or a list of bools, got %s", data)
	}
	*l = many
	return nil
}

// MarshalJSON writes a single value as a bool.
func (l BoolList) MarshalJSON() ([]byte, error) {
	if len(l) == 1 {
		return json.Marshal(l[0])
	}
	return json.Marshal([]bool(l))
}
