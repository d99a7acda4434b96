package unet

import (
	"context"

	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/lora"
	"gorgonia.org/tensor"
)

// ForwardLoRA is Forward with low-rank updates on some of the UNet's Linear and Conv2d layers
// (keyed by lora.Flat of their diffusers module names, e.g.
// "down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"): each computes
// W·x + b + Up·(Down·x). The updates are inputs of the compiled program, so calls with other
// adapters or scales but the same layers and ranks reuse it; nil or empty updates are Forward
// exactly. An update for a layer the UNet does not have is an error naming it.
func (m *Model) ForwardLoRA(ctx context.Context, sample *tensor.Dense, timestep float64, text *tensor.Dense, u lora.Updates) (*tensor.Dense, error) {
	outs, err := m.run(ctx, sample, timestep, text, nil, u)
	if err != nil {
		return nil, err
	}
	return outs[0], nil
}

// runLoRA runs inputs (the three, then u's values) on the program for u's layers.
func (m *Model) runLoRA(ctx context.Context, u lora.Updates, inputs []*tensor.Dense) ([]*tensor.Dense, error) {
	return m.lora.Run(ctx, m.runner, u, func(u lora.Updates) nn.BuildFunc {
		return func(shapes ...tensor.Shape) (*nn.Program, error) { return m.compileLoRA(shapes[0], shapes[2], nil, u) }
	}, inputs...)
}
