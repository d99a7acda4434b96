package clip

import (
	"context"

	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/lora"
	"gorgonia.org/tensor"
)

// EncodeLoRA is Encode with low-rank updates on some of the text encoder's Linear layers
// (keyed by lora.Flat of their module names, e.g. "text_model_encoder_layers_0_self_attn_q_proj"):
// each computes W·x + b + Up·(Down·x). nil or empty updates are Encode exactly; an update for a
// layer the model does not have is an error naming it.
func (m *TextModel) EncodeLoRA(ctx context.Context, ids [][]int, u lora.Updates) (*tensor.Dense, error) {
	outs, err := m.run(ctx, ids, nil, u)
	if err != nil {
		return nil, err
	}
	return outs[0], nil
}

// runLoRA runs inputs (the ids, then u's values) on the program for u's layers.
func (m *TextModel) runLoRA(ctx context.Context, u lora.Updates, inputs []*tensor.Dense) ([]*tensor.Dense, error) {
	return m.lora.Run(ctx, m.runner, u, func(u lora.Updates) nn.BuildFunc {
		return func(shapes ...tensor.Shape) (*nn.Program, error) {
			return m.compileLoRA(shapes[0][0], shapes[0][1], nil, u)
		}
	}, inputs...)
}
