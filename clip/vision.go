package clip

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The vision tower of CLIP: transformers' CLIPVisionTransformer (models/clip/modeling_clip.py,
// v4.33), as the Stable Diffusion safety checker uses it. Its encoder layers are the text
// tower's EncoderLayer without the causal mask.

// VisionConfig is the part of transformers' CLIPVisionConfig (the vision_config of a
// CLIPConfig, v4.33 keys) that decides the vision tower's computation. Keys missing from the
// file take CLIPVisionConfig's defaults (DefaultVisionConfig).
type VisionConfig struct {
	HiddenSize        int     `json:"hidden_size"`
	IntermediateSize  int     `json:"intermediate_size"`
	ProjectionDim     int     `json:"projection_dim"` // informational: CLIPVisionModel has no projection
	NumHiddenLayers   int     `json:"num_hidden_layers"`
	NumAttentionHeads int     `json:"num_attention_heads"`
	NumChannels       int     `json:"num_channels"`
	ImageSize         int     `json:"image_size"`
	PatchSize         int     `json:"patch_size"`
	HiddenAct         string  `json:"hidden_act"`
	LayerNormEps      float64 `json:"layer_norm_eps"`
	AttentionDropout  float64 `json:"attention_dropout"` // identity at inference
	// ModelType must be "clip_vision_model" when present.
	ModelType string `json:"model_type"`
}

// DefaultVisionConfig returns transformers' CLIPVisionConfig defaults (v4.33: ViT-B/32).
func DefaultVisionConfig() VisionConfig {
	return VisionConfig{
		HiddenSize:        768,
		IntermediateSize:  3072,
		ProjectionDim:     512,
		NumHiddenLayers:   12,
		NumAttentionHeads: 12,
		NumChannels:       3,
		ImageSize:         224,
		PatchSize:         32,
		HiddenAct:         QuickGELU,
		LayerNormEps:      1e-5,
		ModelType:         "clip_vision_model",
	}
}

// UnmarshalJSON reads a vision_config object: absent keys (and null values) keep
// DefaultVisionConfig's values.
func (c *VisionConfig) UnmarshalJSON(data []byte) error {
	type plain VisionConfig // without UnmarshalJSON
	cfg := plain(DefaultVisionConfig())
	if err := json.Unmarshal(data, &cfg); err != nil {
		return err
	}
	*c = VisionConfig(cfg)
	return nil
}

// Validate reports the first value this package cannot build, naming its config key.
func (c VisionConfig) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("clip: vision_config key %q: %s", key, fmt.Sprintf(format, args...))
	}
	positive := []struct {
		key string
		v   int
	}{{"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize},
		{"num_hidden_layers", c.NumHiddenLayers}, {"num_attention_heads", c.NumAttentionHeads},
		{"num_channels", c.NumChannels}, {"image_size", c.ImageSize}, {"patch_size", c.PatchSize}}
	for _, p := range positive {
		if p.v < 1 || p.v > 1<<20 {
			return bad(p.key, "%d; want 1…%d", p.v, 1<<20)
		}
	}
	switch {
	case c.ModelType != "" && c.ModelType != "clip_vision_model":
		return bad("model_type", "%q; want \"clip_vision_model\"", c.ModelType)
	case c.HiddenSize%c.NumAttentionHeads != 0:
		return bad("num_attention_heads", "%d heads do not divide hidden_size %d", c.NumAttentionHeads, c.HiddenSize)
	case c.PatchSize > c.ImageSize:
		return bad("patch_size", "%d is larger than image_size %d", c.PatchSize, c.ImageSize)
	case c.HiddenAct != QuickGELU && c.HiddenAct != GELU:
		return bad("hidden_act", "%q; supported: %q, %q", c.HiddenAct, QuickGELU, GELU)
	case !(c.LayerNormEps > 0) || math.IsInf(c.LayerNormEps, 0):
		return bad("layer_norm_eps", "%g", c.LayerNormEps)
	}
	return nil
}

// NumPositions is the number of tokens the tower sees: one per patch and the class token
// ((image_size/patch_size)² + 1; 257 for ViT-L/14 at 224).
func (c VisionConfig) NumPositions() int {
	g := c.ImageSize / c.PatchSize
	return g*g + 1
}

// layerConfig is what the vision tower's encoder layers need: self-attention without a mask.
func (c VisionConfig) layerConfig() layerConfig {
	return layerConfig{hidden: c.HiddenSize, heads: c.NumAttentionHeads, intermediate: c.IntermediateSize,
		act: c.HiddenAct, eps: c.LayerNormEps}
}

// VisionEmbeddings is CLIPVisionEmbeddings: the image cut into patches by a stride-patch_size
// convolution without bias, a learned class token in front, plus learned position embeddings.
type VisionEmbeddings struct {
	PatchEmbedding    *nn.Conv2d
	ClassEmbedding    *tensor.Dense // hidden_size
	PositionEmbedding *nn.Embedding // num_positions × hidden_size

	// clsPos is the position table with the class embedding added to row 0: the graph puts a
	// zero row in front of the patches and adds clsPos, which gives cat(class, patches) + pos
	// exactly (x + 0 = x in float32) without a per-batch copy of the class token.
	clsPos nn.Param
}

func newVisionEmbeddings(w weights.View, cfg VisionConfig) (*VisionEmbeddings, error) {
	d := cfg.HiddenSize
	e := &VisionEmbeddings{}
	var err error
	if e.ClassEmbedding, err = w.Tensor("class_embedding", d); err != nil {
		return nil, err
	}
	if e.ClassEmbedding.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("clip: weight %s.class_embedding is %v, want float32", w.Prefix(), e.ClassEmbedding.Dtype())
	}
	if e.PatchEmbedding, err = nn.NewConv2dNoBias(w.Sub("patch_embedding"), cfg.NumChannels, d, cfg.PatchSize, cfg.PatchSize, 0); err != nil {
		return nil, err
	}
	if e.PositionEmbedding, err = nn.NewEmbedding(w.Sub("position_embedding"), cfg.NumPositions(), d); err != nil {
		return nil, err
	}
	pos := e.PositionEmbedding.Weight.T.Float32s()
	table := make([]float32, len(pos))
	copy(table, pos)
	for j, v := range e.ClassEmbedding.Float32s() {
		table[j] += v
	}
	e.clsPos = nn.Param{Name: w.Prefix() + ".class+position_embedding",
		T: tensor.New(tensor.WithShape(cfg.NumPositions(), d), tensor.WithBacking(table))}
	return e, nil
}

// Forward embeds pixel values x (B×num_channels×image_size×image_size) as B×num_positions×hidden.
func (e *VisionEmbeddings) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	h, err := e.PatchEmbedding.Forward(x) // B×D×g×g
	if err != nil {
		return nil, err
	}
	if h, err = nn.ToTokens(h); err != nil { // flatten(2).transpose(1, 2): B×g²×D
		return nil, err
	}
	s := h.Shape()
	b, n, d := s[0], s[1], s[2]
	if h, err = nn.Reshape(h, b, 1, n, d); err != nil {
		return nil, err
	}
	if h, err = nn.Pad2D(h, 1, 0, 0, 0); err != nil { // the class token's place, zero
		return nil, err
	}
	if h, err = nn.Reshape(h, b, n+1, d); err != nil {
		return nil, err
	}
	return nn.AddBroadcast(h, e.clsPos.Node(x.Graph()))
}

// VisionModel is transformers' CLIPVisionModel (its CLIPVisionTransformer): patch and position
// embeddings, pre_layrnorm (sic, the checkpoint's name), the encoder layers, and
// post_layernorm on the class token, which is the pooled output. It builds graph nodes; the
// model that uses it (the safety checker) compiles and runs them.
type VisionModel struct {
	cfg VisionConfig

	Embeddings    *VisionEmbeddings
	PreLayerNorm  *nn.LayerNorm
	Layers        []*EncoderLayer
	PostLayerNorm *nn.LayerNorm
}

// NewVisionModel builds the vision tower described by cfg from the weights under w (a
// CLIPVisionModel's tensors, named as transformers names them: vision_model.embeddings…,
// vision_model.pre_layrnorm…, vision_model.encoder.layers.N…, vision_model.post_layernorm…).
// Missing or mis-shaped tensors are errors naming them. A checkpoint's
// vision_model.embeddings.position_ids buffer is not read (transformers 4.33 does not load it).
func NewVisionModel(cfg VisionConfig, w weights.View) (*VisionModel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w = w.Sub("vision_model")
	eps := float32(cfg.LayerNormEps)
	m := &VisionModel{cfg: cfg}
	var err error
	if m.Embeddings, err = newVisionEmbeddings(w.Sub("embeddings"), cfg); err != nil {
		return nil, err
	}
	if m.PreLayerNorm, err = nn.NewLayerNorm(w.Sub("pre_layrnorm"), cfg.HiddenSize, eps); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		l, err := newEncoderLayer(w.Sub("encoder.layers").Sub(fmt.Sprint(i)), cfg.layerConfig())
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, l)
	}
	if m.PostLayerNorm, err = nn.NewLayerNorm(w.Sub("post_layernorm"), cfg.HiddenSize, eps); err != nil {
		return nil, err
	}
	return m, nil
}

// VisionPositionIDs is the name of the buffer real vision checkpoints may carry under a
// CLIPVisionModel's prefix; it holds no weights.
const VisionPositionIDs = "vision_model.embeddings.position_ids"

// Config returns the model's configuration.
func (m *VisionModel) Config() VisionConfig { return m.cfg }

// Forward adds the tower to x's graph for pixel values x (B×num_channels×image_size×
// image_size) and returns the last hidden state (B×num_positions×hidden) and the pooled output
// (B×hidden: post_layernorm of each image's class token).
func (m *VisionModel) Forward(x *gorgonia.Node) (last, pooled *gorgonia.Node, err error) {
	c := m.cfg
	if s := x.Shape(); len(s) != 4 || s[1] != c.NumChannels || s[2] != c.ImageSize || s[3] != c.ImageSize {
		return nil, nil, fmt.Errorf("clip: vision input %v; want B×%d×%d×%d (num_channels, image_size)",
			s, c.NumChannels, c.ImageSize, c.ImageSize)
	}
	h, err := m.Embeddings.Forward(x)
	if err == nil {
		h, err = m.PreLayerNorm.Forward(h)
	}
	for _, l := range m.Layers {
		if err != nil {
			break
		}
		h, err = l.Forward(h)
	}
	if err != nil {
		return nil, nil, err
	}
	// last_hidden_state[:, 0, :], one image at a time (views), joined into B×hidden.
	b, n, d := x.Shape()[0], c.NumPositions(), c.HiddenSize
	cls := make([]*gorgonia.Node, b)
	for i := range cls {
		t, err := nn.SliceBatch(h, i, i+1)
		if err == nil {
			t, err = nn.Reshape(t, n, d)
		}
		if err == nil {
			t, err = nn.SliceBatch(t, 0, 1)
		}
		if err == nil {
			t, err = nn.Reshape(t, 1, 1, d)
		}
		if err != nil {
			return nil, nil, err
		}
		cls[i] = t
	}
	p := cls[0]
	if b > 1 {
		if p, err = nn.Concat(cls...); err != nil {
			return nil, nil, err
		}
	}
	if p, err = nn.Reshape(p, b, d); err == nil {
		p, err = m.PostLayerNorm.Forward(p)
	}
	if err != nil {
		return nil, nil, err
	}
	return h, p, nil
}
