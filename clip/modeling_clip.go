package clip

import (
	"fmt"

	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
)

// The blocks of transformers' CLIPTextTransformer (models/clip/modeling_clip.py, v4.33), each
// built from its checkpoint names and run like its PyTorch forward.

// TextEmbeddings is CLIPTextEmbeddings: token embedding plus learned position embedding.
// The checkpoint's position_ids buffer is not read: transformers 4.33 does not load it either
// (persistent=False) and uses 0…L−1.
type TextEmbeddings struct {
	TokenEmbedding    *nn.Embedding
	PositionEmbedding *nn.Embedding
}

func newTextEmbeddings(w weights.View, cfg Config) (*TextEmbeddings, error) {
	tok, err := nn.NewEmbedding(w.Sub("token_embedding"), cfg.VocabSize, cfg.HiddenSize)
	if err != nil {
		return nil, err
	}
	pos, err := nn.NewEmbedding(w.Sub("position_embedding"), cfg.MaxPositionEmbeddings, cfg.HiddenSize)
	if err != nil {
		return nil, err
	}
	return &TextEmbeddings{TokenEmbedding: tok, PositionEmbedding: pos}, nil
}

// Forward embeds ids (B×L float32 node of integral ids, L ≤ max_position_embeddings) as B×L×hidden.
func (e *TextEmbeddings) Forward(ids *gorgonia.Node) (*gorgonia.Node, error) {
	l := ids.Shape()[1]
	tok, err := e.TokenEmbedding.Forward(ids)
	if err != nil {
		return nil, err
	}
	// position_embedding(arange(L)) is the first L rows of the table: a view, no lookup.
	pos := e.PositionEmbedding.Table(ids.Graph())
	if l != e.PositionEmbedding.Vocab {
		if pos, err = nn.SliceBatch(pos, 0, l); err != nil {
			return nil, err
		}
	}
	return nn.AddBroadcast(tok, pos)
}

// MLP is CLIPMLP: fc1 → activation → fc2.
type MLP struct {
	FC1, FC2 *nn.Linear
	act      string
}

func newMLP(w weights.View, c layerConfig) (*MLP, error) {
	fc1, err := nn.NewLinear(w.Sub("fc1"), c.hidden, c.intermediate, true)
	if err != nil {
		return nil, err
	}
	fc2, err := nn.NewLinear(w.Sub("fc2"), c.intermediate, c.hidden, true)
	if err != nil {
		return nil, err
	}
	return &MLP{FC1: fc1, FC2: fc2, act: c.act}, nil
}

// Forward maps x (…×hidden) to …×hidden.
func (m *MLP) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	h, err := m.FC1.Forward(x)
	if err == nil {
		h, err = nn.Activation(m.act, h)
	}
	if err != nil {
		return nil, err
	}
	return m.FC2.Forward(h)
}

// EncoderLayer is CLIPEncoderLayer: pre-LayerNorm self-attention (causal in the text tower)
// and MLP, each added to the residual stream. The text and vision towers share it.
type EncoderLayer struct {
	SelfAttn               *nn.Attention
	LayerNorm1, LayerNorm2 *nn.LayerNorm
	MLP                    *MLP
}

// layerConfig is what a CLIPEncoderLayer reads from CLIPTextConfig or CLIPVisionConfig.
type layerConfig struct {
	hidden, heads, intermediate int
	act                         string
	eps                         float64
	causal                      bool // the text tower's causal mask
}

func newEncoderLayer(w weights.View, c layerConfig) (*EncoderLayer, error) {
	eps := float32(c.eps)
	attn, err := nn.NewAttention(w.Sub("self_attn"), nn.AttentionConfig{
		QueryDim: c.hidden, Heads: c.heads, HeadDim: c.hidden / c.heads,
		QKVBias: true, Causal: c.causal, Names: nn.CLIPNames(),
	})
	if err != nil {
		return nil, err
	}
	l := &EncoderLayer{SelfAttn: attn}
	if l.LayerNorm1, err = nn.NewLayerNorm(w.Sub("layer_norm1"), c.hidden, eps); err != nil {
		return nil, err
	}
	if l.MLP, err = newMLP(w.Sub("mlp"), c); err != nil {
		return nil, err
	}
	if l.LayerNorm2, err = nn.NewLayerNorm(w.Sub("layer_norm2"), c.hidden, eps); err != nil {
		return nil, err
	}
	return l, nil
}

// Forward runs the layer on x (B×L×hidden). The text tower's causal mask is the only mask: the
// SD pipeline passes no attention mask, and the vision tower has none.
func (l *EncoderLayer) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	return l.forward(x, tapper{m: map[string]*gorgonia.Node{}})
}

// forward is Forward recording the sub-module outputs in tp.
func (l *EncoderLayer) forward(x *gorgonia.Node, tp tapper) (*gorgonia.Node, error) {
	h, err := l.LayerNorm1.Forward(x)
	if err != nil {
		return nil, err
	}
	tp.put("layer_norm1", h)
	if h, err = l.SelfAttn.Forward(h, nil); err != nil {
		return nil, err
	}
	tp.put("self_attn", h)
	if x, err = nn.Add(x, h); err != nil {
		return nil, err
	}
	if h, err = l.LayerNorm2.Forward(x); err != nil {
		return nil, err
	}
	tp.put("layer_norm2", h)
	if h, err = l.MLP.Forward(h); err != nil {
		return nil, err
	}
	tp.put("mlp", h)
	return nn.Add(x, h)
}

// tapper records named intermediate nodes under a module path prefix.
type tapper struct {
	prefix string
	m      map[string]*gorgonia.Node
}

func (t tapper) put(name string, n *gorgonia.Node) { t.m[t.prefix+name] = n }

func (t tapper) sub(name string) tapper { return tapper{prefix: t.prefix + name + ".", m: t.m} }

// forward is CLIPTextTransformer.forward up to last_hidden_state (the pooled output is picked
// from it outside the graph).
func (m *TextModel) forward(ids *gorgonia.Node, tp tapper) (*gorgonia.Node, error) {
	h, err := m.Embeddings.Forward(ids)
	if err != nil {
		return nil, err
	}
	tp.put("embeddings", h)
	for i, layer := range m.Layers {
		name := fmt.Sprintf("layers.%d", i)
		if h, err = layer.forward(h, tp.sub(name)); err != nil {
			return nil, err
		}
		tp.put(name, h)
	}
	return m.FinalLayerNorm.Forward(h)
}
