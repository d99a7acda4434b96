package vae

import (
	"fmt"

	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/weights"
)

// DefaultScalingFactor is diffusers' default scaling_factor, SD 1.x's latent scale.
const DefaultScalingFactor = 0.18215

// Config is an AutoencoderKL config.json (diffusers' keys). Only the decoder is built from it.
type Config struct {
	ClassName        string   `json:"_class_name"` // "AutoencoderKL" (or empty)
	InChannels       int      `json:"in_channels"`
	OutChannels      int      `json:"out_channels"`
	DownBlockTypes   []string `json:"down_block_types"`
	UpBlockTypes     []string `json:"up_block_types"`
	BlockOutChannels []int    `json:"block_out_channels"`
	LayersPerBlock   int      `json:"layers_per_block"`
	ActFn            string   `json:"act_fn"`
	LatentChannels   int      `json:"latent_channels"`
	NormNumGroups    int      `json:"norm_num_groups"`
	SampleSize       int      `json:"sample_size"`
	// ScalingFactor is the latent scale the pipeline divides latents by before Decode.
	ScalingFactor float64 `json:"scaling_factor"`
	ForceUpcast   bool    `json:"force_upcast"`

	// Keys of later diffusers versions that would change the decoder; nil when absent.
	UsePostQuantConv     *bool `json:"use_post_quant_conv,omitempty"`
	MidBlockAddAttention *bool `json:"mid_block_add_attention,omitempty"`
}

// DefaultConfig returns AutoencoderKL's defaults in diffusers v0.21.4 (the values of keys a
// config.json leaves out).
func DefaultConfig() Config {
	return Config{
		InChannels:       3,
		OutChannels:      3,
		DownBlockTypes:   []string{"DownEncoderBlock2D"},
		UpBlockTypes:     []string{"UpDecoderBlock2D"},
		BlockOutChannels: []int{64},
		LayersPerBlock:   1,
		ActFn:            "silu",
		LatentChannels:   4,
		NormNumGroups:    32,
		SampleSize:       32,
		ScalingFactor:    DefaultScalingFactor,
		ForceUpcast:      true,
	}
}

// LoadConfig reads an AutoencoderKL config.json (path is the file or the vae folder holding
// it); absent keys take diffusers' defaults. It fails on values the decoder does not support,
// naming the key.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if err := weights.ReadConfig(path, &cfg); err != nil {
		return Config{}, fmt.Errorf("vae: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("vae: %s: %w", path, err)
	}
	return cfg, nil
}

// Validate reports the first config value the decoder cannot build, naming its key.
func (c Config) Validate() error {
	if c.ClassName != "" && c.ClassName != "AutoencoderKL" {
		return fmt.Errorf("_class_name = %q: only AutoencoderKL is supported", c.ClassName)
	}
	if len(c.BlockOutChannels) == 0 {
		return fmt.Errorf("block_out_channels is empty")
	}
	if c.NormNumGroups < 1 {
		return fmt.Errorf("norm_num_groups = %d, want ≥ 1", c.NormNumGroups)
	}
	for i, ch := range c.BlockOutChannels {
		if ch < 1 || ch%c.NormNumGroups != 0 {
			return fmt.Errorf("block_out_channels[%d] = %d: not a positive multiple of norm_num_groups %d", i, ch, c.NormNumGroups)
		}
	}
	if len(c.UpBlockTypes) != len(c.BlockOutChannels) {
		return fmt.Errorf("up_block_types has %d entries, block_out_channels %d: they must match", len(c.UpBlockTypes), len(c.BlockOutChannels))
	}
	for i, t := range c.UpBlockTypes {
		if t != "UpDecoderBlock2D" {
			return fmt.Errorf("up_block_types[%d] = %q: only UpDecoderBlock2D is supported", i, t)
		}
	}
	if c.LayersPerBlock < 0 {
		return fmt.Errorf("layers_per_block = %d, want ≥ 0", c.LayersPerBlock)
	}
	if c.LatentChannels < 1 {
		return fmt.Errorf("latent_channels = %d, want ≥ 1", c.LatentChannels)
	}
	if c.OutChannels < 1 {
		return fmt.Errorf("out_channels = %d, want ≥ 1", c.OutChannels)
	}
	// The decoder's resnets use get_activation(act_fn); nn's ResnetBlock2D is SiLU.
	if c.ActFn != "silu" && c.ActFn != "swish" {
		return fmt.Errorf("act_fn = %q: only \"silu\" (or \"swish\") is supported", c.ActFn)
	}
	if !(c.ScalingFactor > 0) {
		return fmt.Errorf("scaling_factor = %v, want > 0", c.ScalingFactor)
	}
	if c.UsePostQuantConv != nil && !*c.UsePostQuantConv {
		return fmt.Errorf("use_post_quant_conv = false is not supported")
	}
	if c.MidBlockAddAttention != nil && !*c.MidBlockAddAttention {
		return fmt.Errorf("mid_block_add_attention = false is not supported")
	}
	return nil
}

// UpscaleFactor is how much the decoder enlarges each side: 2^(len(block_out_channels)-1).
func (c Config) UpscaleFactor() int { return 1 << (len(c.BlockOutChannels) - 1) }

// TileLatentSize is diffusers' tile_latent_min_size: sample_size / UpscaleFactor.
func (c Config) TileLatentSize() int { return c.SampleSize / c.UpscaleFactor() }

// DefaultCacheLimit is the default budget of Decoder.SetCacheLimit and Encoder.SetCacheLimit.
const DefaultCacheLimit = nn.DefaultCacheLimit
