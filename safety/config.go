package safety

import (
	"encoding/json"
	"fmt"

	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/weights"
)

// Config is the part of the safety checker's config.json (a transformers CLIPConfig, v4.33
// keys) that decides its computation: the vision tower's vision_config and projection_dim, the
// width of image_embeds and of the concept embeddings. Keys missing from the file take
// CLIPConfig's defaults (DefaultConfig); the text_config is not used.
type Config struct {
	ProjectionDim int               `json:"projection_dim"`
	VisionConfig  clip.VisionConfig `json:"vision_config"`
	// ModelType must be "clip" when present.
	ModelType string `json:"model_type"`
}

// DefaultConfig returns CLIPConfig's defaults (v4.33): projection_dim 512 and
// CLIPVisionConfig's defaults.
func DefaultConfig() Config {
	return Config{ProjectionDim: 512, VisionConfig: clip.DefaultVisionConfig(), ModelType: "clip"}
}

// UnmarshalJSON reads a config.json: absent keys (and null values) keep DefaultConfig's values.
func (c *Config) UnmarshalJSON(data []byte) error {
	type plain Config
	cfg := plain(DefaultConfig())
	if err := json.Unmarshal(data, &cfg); err != nil {
		return err
	}
	*c = Config(cfg)
	return nil
}

// Validate reports the first value this package cannot build, naming its config key.
func (c Config) Validate() error {
	if c.ModelType != "" && c.ModelType != "clip" {
		return fmt.Errorf("safety: config key \"model_type\": %q; want \"clip\" (a StableDiffusionSafetyChecker config)", c.ModelType)
	}
	if c.ProjectionDim < 1 || c.ProjectionDim > 1<<20 {
		return fmt.Errorf("safety: config key \"projection_dim\": %d; want 1…%d", c.ProjectionDim, 1<<20)
	}
	return c.VisionConfig.Validate()
}

// LoadConfig reads a safety checker config.json (the file, or the safety_checker folder
// holding it) and validates it.
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
