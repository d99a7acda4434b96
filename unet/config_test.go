package unet

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
)

func TestLoadConfig(t *testing.T) {
	tiny, err := LoadConfig(golden.Path("tiny-sd", "unet")) // a folder works too
	if err != nil {
		t.Fatal(err)
	}
	if tiny.MidBlockType != UNetMidBlock2DCrossAttn || tiny.NormNumGroups != 8 || tiny.AttentionHeadDim.At(2) != 8 ||
		tiny.LayersPerBlock.At(0) != 1 || tiny.CrossAttentionDim.At(3) != 32 || tiny.SampleSize != 16 {
		t.Errorf("tiny config read as %+v", tiny)
	}
	// The real small-sd config leaves out many keys: diffusers' defaults apply.
	real := smallSDConfig(t)
	if real.MidBlockType != UNetMidBlock2DCrossAttn || real.TransformerLayersPerBlock.At(0) != 1 || real.UseLinearProjection ||
		real.ConvInKernel != 3 || real.ResnetTimeScaleShift != "default" || real.TimeEmbeddingType != "positional" ||
		real.CrossAttentionDim.At(0) != 768 || real.BlockOutChannels[3] != 1280 {
		t.Errorf("small-sd config read as %+v", real)
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing config: no error")
	}
}

// writeConfig writes the tiny config with the given keys replaced (raw JSON values).
func writeConfig(t *testing.T, changes map[string]string) string {
	t.Helper()
	data, err := os.ReadFile(golden.Path("tiny-sd", "unet", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range changes {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = json.RawMessage(v)
		}
	}
	out, _ := json.Marshal(m)
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadConfigs(t *testing.T) {
	for _, c := range []struct{ key, value string }{
		{"class_embed_type", `"timestep"`},
		{"num_class_embeds", `10`},
		{"class_embeddings_concat", `true`},
		{"addition_embed_type", `"text"`},
		{"encoder_hid_dim", `768`},
		{"encoder_hid_dim_type", `"text_proj"`},
		{"dual_cross_attention", `true`},
		{"only_cross_attention", `true`},
		{"only_cross_attention", `[false, true, false, false]`},
		{"num_attention_heads", `8`},
		{"resnet_time_scale_shift", `"scale_shift"`},
		{"time_embedding_type", `"fourier"`},
		{"time_embedding_act_fn", `"silu"`},
		{"timestep_post_act", `"silu"`},
		{"time_cond_proj_dim", `256`},
		{"cross_attention_norm", `"group_norm"`},
		{"attention_type", `"gated"`},
		{"act_fn", `"gelu"`},
		{"norm_num_groups", `null`},
		{"norm_num_groups", `7`},
		{"attention_head_dim", `3`},
		{"attention_head_dim", `[8, 8]`},
		{"attention_head_dim", `"eight"`},
		{"layers_per_block", `0`},
		{"transformer_layers_per_block", `[[1, 2], [1, 2], [1, 2], [1, 2]]`},
		{"down_block_types", `["AttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]`},
		{"up_block_types", `["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]`},
		{"mid_block_type", `"UNetMidBlock2DSimpleCrossAttn"`},
		{"block_out_channels", `[]`},
		{"conv_in_kernel", `2`},
	} {
		_, err := LoadConfig(writeConfig(t, map[string]string{c.key: c.value}))
		if err == nil {
			t.Errorf("%s = %s: no error", c.key, c.value)
			continue
		}
		if !strings.Contains(err.Error(), `"`+c.key+`"`) {
			t.Errorf("%s = %s: error does not name the key: %v", c.key, c.value, err)
		}
		t.Logf("%s = %s: %v", c.key, c.value, err)
	}
	// Values that do not change the computation of these blocks are accepted.
	for _, c := range []map[string]string{
		{"upcast_attention": "true", "attention_head_dim": "[8, 8, 8, 8]", "only_cross_attention": "[false, false, false, false]"},
		{"resnet_skip_time_act": "true", "resnet_out_scale_factor": "2.0", "dropout": "0.1", "sample_size": "null"},
		{"mid_block_type": "null"},
		{"transformer_layers_per_block": "[1, 1, 1, 1]", "cross_attention_dim": "[32, 32, 32, 32]", "layers_per_block": "[1, 1, 1, 1]"},
	} {
		if _, err := LoadConfig(writeConfig(t, c)); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
}

// TestKnownParameterCounts builds the standard SD 1.5 and SD 2.x UNet configs (layers_per_block
// 2; SD 2 with linear projections and per-block head counts) and checks their well-known
// parameter counts.
func TestKnownParameterCounts(t *testing.T) {
	sd15 := DefaultConfig()
	sd15.CrossAttentionDim = IntList{768}
	sd2 := DefaultConfig()
	sd2.CrossAttentionDim = IntList{1024}
	sd2.AttentionHeadDim = IntList{5, 10, 20, 20}
	sd2.UseLinearProjection = true
	for _, c := range []struct {
		name string
		cfg  Config
		want int64
	}{{"SD 1.5", sd15, 859520964}, {"SD 2.1", sd2, 865910724}} {
		src := weights.NewZeros()
		if _, err := New(c.cfg, src.View()); err != nil {
			t.Fatal(err)
		}
		got := paramCount(src.Requested())
		t.Logf("%s: %d tensors, %d parameters", c.name, len(src.Requested()), got)
		if got != c.want {
			t.Errorf("%s: %d parameters, want %d", c.name, got, c.want)
		}
	}
}

// TestFLOPs checks the operation count against the figures the project plans with (small-sd,
// batch 2, 77 text tokens): 1046 GFLOP at 64×64 latents, 236.8 at 32×32.
func TestFLOPs(t *testing.T) {
	cfg := smallSDConfig(t)
	for _, c := range []struct {
		size int
		want float64
	}{{64, 1046e9}, {32, 236.8e9}} {
		got := cfg.FLOPs(2, c.size, c.size, 77)
		t.Logf("%d×%d: %.1f GFLOP", c.size, c.size, got/1e9)
		if math.Abs(got-c.want) > 0.002*c.want {
			t.Errorf("%d×%d: %.1f GFLOP, want %.1f", c.size, c.size, got/1e9, c.want/1e9)
		}
	}
}
