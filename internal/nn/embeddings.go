package nn

import (
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
)

// Timesteps is diffusers' Timesteps: the sinusoidal embedding of get_timestep_embedding (scale
// 1, max_period 10000), computed in float32 as torch does. It has no weights.
type Timesteps struct {
	NumChannels        int
	FlipSinToCos       bool
	DownscaleFreqShift float32
}

// NewTimesteps returns the embedding; the UNet uses (block_out_channels[0], flip_sin_to_cos,
// freq_shift).
func NewTimesteps(numChannels int, flipSinToCos bool, downscaleFreqShift float32) *Timesteps {
	return &Timesteps{NumChannels: numChannels, FlipSinToCos: flipSinToCos, DownscaleFreqShift: downscaleFreqShift}
}

// Forward embeds t (N timesteps, float32) as N×NumChannels.
func (e *Timesteps) Forward(t *gorgonia.Node) (*gorgonia.Node, error) {
	return TimestepEmbed(t, e.NumChannels, e.FlipSinToCos, e.DownscaleFreqShift, 1, 10000)
}

// TimestepEmbedding is diffusers' TimestepEmbedding: linear_1 → activation → linear_2.
type TimestepEmbedding struct {
	Linear1, Linear2 *Linear
	act              string
}

// NewTimestepEmbedding reads linear_1 (in → dim) and linear_2 (dim → dim) under w; act is the
// config's act_fn ("silu").
func NewTimestepEmbedding(w weights.View, in, dim int, act string) (*TimestepEmbedding, error) {
	if _, err := activationKind(act); err != nil {
		return nil, err
	}
	l1, err := NewLinear(w.Sub("linear_1"), in, dim, true)
	if err != nil {
		return nil, err
	}
	l2, err := NewLinear(w.Sub("linear_2"), dim, dim, true)
	if err != nil {
		return nil, err
	}
	return &TimestepEmbedding{Linear1: l1, Linear2: l2, act: act}, nil
}

// Forward maps x (N×in) to N×dim.
func (e *TimestepEmbedding) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	h, err := e.Linear1.Forward(x)
	if err == nil {
		h, err = Activation(e.act, h)
	}
	if err != nil {
		return nil, err
	}
	return e.Linear2.Forward(h)
}
