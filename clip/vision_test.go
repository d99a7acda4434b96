package clip

import (
	"encoding/json"
	"strings"
	"testing"
)

// A vision_config takes CLIPVisionConfig's defaults for absent keys, and bad values are errors
// naming the key.
func TestVisionConfig(t *testing.T) {
	var c VisionConfig
	if err := json.Unmarshal([]byte(`{"hidden_size": 1024, "num_attention_heads": 16, "patch_size": 14, "num_hidden_layers": 24}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.ImageSize != 224 || c.NumChannels != 3 || c.HiddenAct != QuickGELU || c.NumPositions() != 257 {
		t.Errorf("defaults not applied: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for key, edit := range map[string]func(*VisionConfig){
		"num_attention_heads": func(c *VisionConfig) { c.NumAttentionHeads = 7 },
		"patch_size":          func(c *VisionConfig) { c.PatchSize = 300 },
		"hidden_act":          func(c *VisionConfig) { c.HiddenAct = "relu" },
		"layer_norm_eps":      func(c *VisionConfig) { c.LayerNormEps = 0 },
		"model_type":          func(c *VisionConfig) { c.ModelType = "clip_text_model" },
		"image_size":          func(c *VisionConfig) { c.ImageSize = 0 },
	} {
		bad := c
		edit(&bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v", key, err)
		}
	}
}
