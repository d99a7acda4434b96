package clip

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/smallsd/smallsd/weights"
)

// Activations the MLP supports (transformers' ACT2FN names).
const (
	QuickGELU = "quick_gelu" // x·sigmoid(1.702·x), CLIP ViT-L/14 (SD 1.x)
	GELU      = "gelu"       // exact erf GELU (SD 2.x's OpenCLIP text encoder)
)

// Config is the part of transformers' CLIPTextConfig (text_encoder/config.json, v4.33 keys)
// that decides the text encoder's computation. Keys missing from the file take
// CLIPTextConfig's defaults (DefaultConfig); keys the model does not use are ignored.
type Config struct {
	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	IntermediateSize      int     `json:"intermediate_size"`
	ProjectionDim         int     `json:"projection_dim"` // informational: CLIPTextModel has no projection
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	HiddenAct             string  `json:"hidden_act"`
	LayerNormEps          float64 `json:"layer_norm_eps"`
	AttentionDropout      float64 `json:"attention_dropout"` // identity at inference
	PadTokenID            int     `json:"pad_token_id"`
	BosTokenID            int     `json:"bos_token_id"`
	// EosTokenID picks the pooled output's position: the first eos id, or the largest id when
	// it is 2 (the legacy rule transformers 4.33 keeps for old configs).
	EosTokenID int `json:"eos_token_id"`
	// ModelType must be "clip_text_model" when present (a whole CLIPConfig is not a text encoder
	// config).
	ModelType string `json:"model_type"`
}

// DefaultConfig returns transformers' CLIPTextConfig defaults (v4.33).
func DefaultConfig() Config {
	return Config{
		VocabSize:             49408,
		HiddenSize:            512,
		IntermediateSize:      2048,
		ProjectionDim:         512,
		NumHiddenLayers:       12,
		NumAttentionHeads:     8,
		MaxPositionEmbeddings: 77,
		HiddenAct:             QuickGELU,
		LayerNormEps:          1e-5,
		PadTokenID:            1,
		BosTokenID:            49406,
		EosTokenID:            49407,
		ModelType:             "clip_text_model",
	}
}

// UnmarshalJSON reads a config.json: absent keys (and null values) keep DefaultConfig's
// values. A value of the wrong type is a *json.UnmarshalTypeError whose Field names the key.
func (c *Config) UnmarshalJSON(data []byte) error {
	type plain Config // without UnmarshalJSON
	cfg := plain(DefaultConfig())
	if err := json.Unmarshal(data, &cfg); err != nil {
		return err
	}
	*c = Config(cfg)
	return nil
}

// LoadConfig reads a text encoder config.json (the file, or the text_encoder folder holding
// it) and validates it.
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
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("clip: config key %q: %s", key, fmt.Sprintf(format, args...))
	}
	if c.ModelType != "" && c.ModelType != "clip_text_model" {
		return bad("model_type", "%q; want \"clip_text_model\" (the text_encoder folder's config)", c.ModelType)
	}
	// Token ids travel through the graph as float32, exact below 2^24.
	if c.VocabSize < 1 || c.VocabSize > 1<<24 {
		return bad("vocab_size", "%d; want 1…%d", c.VocabSize, 1<<24)
	}
	if c.HiddenSize < 1 {
		return bad("hidden_size", "%d", c.HiddenSize)
	}
	if c.NumAttentionHeads < 1 {
		return bad("num_attention_heads", "%d", c.NumAttentionHeads)
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return bad("num_attention_heads", "%d heads do not divide hidden_size %d", c.NumAttentionHeads, c.HiddenSize)
	}
	if c.NumHiddenLayers < 1 {
		return bad("num_hidden_layers", "%d", c.NumHiddenLayers)
	}
	if c.IntermediateSize < 1 {
		return bad("intermediate_size", "%d", c.IntermediateSize)
	}
	if c.MaxPositionEmbeddings < 1 {
		return bad("max_position_embeddings", "%d", c.MaxPositionEmbeddings)
	}
	if c.HiddenAct != QuickGELU && c.HiddenAct != GELU {
		return bad("hidden_act", "%q; supported: %q, %q", c.HiddenAct, QuickGELU, GELU)
	}
	if !(c.LayerNormEps > 0) || math.IsInf(c.LayerNormEps, 0) {
		return bad("layer_norm_eps", "%g", c.LayerNormEps)
	}
	return nil
}

// layerConfig is what the text tower's encoder layers need: causal self-attention.
func (c Config) layerConfig() layerConfig {
	return layerConfig{hidden: c.HiddenSize, heads: c.NumAttentionHeads, intermediate: c.IntermediateSize,
		act: c.HiddenAct, eps: c.LayerNormEps, causal: true}
}
