package unet

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
)

// FuzzConfig feeds arbitrary JSON to the config reader: it must never panic, and any config
// Validate accepts (at small widths) must build against a source that has every tensor.
//
//	go test ./unet -run '^$' -fuzz FuzzConfig -fuzztime 1m
func FuzzConfig(f *testing.F) {
	for _, p := range []string{golden.Path("tiny-sd", "unet", "config.json"), golden.Path("configs", "unet", "config.json")} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"block_out_channels": [8, 16], "norm_num_groups": 4, "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
		"up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "attention_head_dim": [2, 4], "layers_per_block": [1, 2],
		"cross_attention_dim": 8, "mid_block_type": null, "transformer_layers_per_block": 2, "use_linear_projection": true}`))
	f.Add([]byte(`{"attention_head_dim": null, "mid_block_type": 3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Config
		if json.Unmarshal(data, &c) != nil || c.Validate() != nil {
			return
		}
		// Keep the model small enough to build in a moment.
		small := len(c.BlockOutChannels) <= 4 && c.InChannels <= 8 && c.OutChannels <= 8 &&
			c.ConvInKernel <= 7 && c.ConvOutKernel <= 7 && c.TimeEmbeddingDim <= 64
		for _, l := range []IntList{c.CrossAttentionDim, c.LayersPerBlock, c.TransformerLayersPerBlock} {
			for _, v := range l {
				small = small && v <= 64
			}
		}
		for _, ch := range c.BlockOutChannels {
			small = small && ch <= 64
		}
		if !small {
			return
		}
		src := weights.NewZeros()
		m, err := New(c, src.View())
		if err != nil {
			t.Fatalf("valid config %s does not build: %v", data, err)
		}
		if c.FLOPs(1, 16, 16, 4) <= 0 {
			t.Fatalf("config %s: no FLOPs", data)
		}
		if _, err := m.TapNames(); err != nil {
			t.Fatalf("config %s: graph does not build: %v", data, err)
		}
	})
}
