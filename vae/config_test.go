package vae

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

func TestLoadConfig(t *testing.T) {
	cfg, err := LoadConfig(golden.Path("tiny-sd", "vae")) // the folder works as well as the file
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LayersPerBlock != 2 || cfg.NormNumGroups != 8 || len(cfg.BlockOutChannels) != 4 || cfg.ScalingFactor != 0.18215 ||
		cfg.UpscaleFactor() != 8 || cfg.TileLatentSize() != 16 {
		t.Errorf("tiny config read as %+v", cfg)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(`{"_class_name": "AutoencoderKL"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err = LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	if cfg.ScalingFactor != 0.18215 || cfg.LayersPerBlock != 1 || cfg.NormNumGroups != 32 || cfg.BlockOutChannels[0] != 64 ||
		cfg.LatentChannels != 4 || cfg.OutChannels != 3 || cfg.ActFn != "silu" || cfg.SampleSize != def.SampleSize {
		t.Errorf("empty config read as %+v, want diffusers' defaults", cfg)
	}
}

func TestBadConfigs(t *testing.T) {
	base := `"block_out_channels": [16, 32], "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "norm_num_groups": 8`
	cases := []struct{ json, key string }{
		{`{` + base + `, "act_fn": "gelu"}`, "act_fn"},
		{`{` + base + `, "_class_name": "AutoencoderTiny"}`, "_class_name"},
		{`{"block_out_channels": [16, 32], "up_block_types": ["UpDecoderBlock2D", "AttnUpDecoderBlock2D"], "norm_num_groups": 8}`, "up_block_types[1]"},
		{`{"block_out_channels": [16, 32], "up_block_types": ["UpDecoderBlock2D"], "norm_num_groups": 8}`, "up_block_types"},
		{`{"block_out_channels": [16, 20], "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "norm_num_groups": 8}`, "block_out_channels[1]"},
		{`{"block_out_channels": [], "up_block_types": []}`, "block_out_channels"},
		{`{` + base + `, "norm_num_groups": 0}`, "norm_num_groups"},
		{`{` + base + `, "latent_channels": 0}`, "latent_channels"},
		{`{` + base + `, "out_channels": 0}`, "out_channels"},
		{`{` + base + `, "layers_per_block": -1}`, "layers_per_block"},
		{`{` + base + `, "scaling_factor": 0}`, "scaling_factor"},
		{`{` + base + `, "use_post_quant_conv": false}`, "use_post_quant_conv"},
		{`{` + base + `, "mid_block_add_attention": false}`, "mid_block_add_attention"},
		{`{` + base + `, "layers_per_block": "two"}`, "config.json"},
		{`{` + base, "config.json"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		path := filepath.Join(dir, "config.json")
		if err := os.WriteFile(path, []byte(c.json), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(path)
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: err = %v, want one naming %q", c.json, err, c.key)
			continue
		}
		t.Logf("%v", err)
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing config: no error")
	}
	if _, err := LoadDecoder(t.TempDir()); err == nil {
		t.Error("LoadDecoder of an empty folder: no error")
	}
	// NewDecoder validates too.
	cfg := DefaultConfig()
	cfg.ActFn = "mish"
	if _, err := NewDecoder(cfg, weights.NewSynthetic().View()); err == nil || !strings.Contains(err.Error(), "act_fn") {
		t.Errorf("NewDecoder with act_fn mish: err = %v", err)
	}
}

// tinyTensors returns the tiny VAE's tensors, for editing.
func tinyTensors(t *testing.T) (Config, map[string]*tensor.Dense) {
	t.Helper()
	s, err := weights.Open(golden.Path("tiny-sd", "vae"), weights.WithCopy())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := map[string]*tensor.Dense{}
	for _, n := range s.Names() {
		if m[n], err = s.Tensor(n); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := LoadConfig(golden.Path("tiny-sd", "vae"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, m
}

func TestMissingAndMisshapenTensors(t *testing.T) {
	cfg, m := tinyTensors(t)
	for _, name := range []string{"post_quant_conv.weight", "decoder.conv_out.bias", "decoder.mid_block.attentions.0.to_k.weight",
		"decoder.up_blocks.2.resnets.0.conv_shortcut.weight", "decoder.up_blocks.2.upsamplers.0.conv.weight", "decoder.conv_norm_out.weight"} {
		orig := m[name]
		if orig == nil {
			t.Fatalf("tiny VAE has no %s", name)
		}
		delete(m, name)
		src, err := weights.FromTensors("edited", m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewDecoder(cfg, src.View()); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("without %s: err = %v, want one naming it", name, err)
		} else {
			t.Logf("%v", err)
		}
		m[name] = tensor.New(tensor.WithShape(2, 3), tensor.Of(tensor.Float32))
		src, _ = weights.FromTensors("edited", m)
		if _, err := NewDecoder(cfg, src.View()); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("misshapen %s: err = %v, want one naming it", name, err)
		}
		m[name] = orig
	}
	// A config that does not match the weights (one more level) fails too.
	cfg.BlockOutChannels = append(cfg.BlockOutChannels, 32)
	cfg.UpBlockTypes = append(cfg.UpBlockTypes, "UpDecoderBlock2D")
	src, _ := weights.FromTensors("tiny", m)
	if _, err := NewDecoder(cfg, src.View()); err == nil {
		t.Error("five-level config on four-level weights: no error")
	} else {
		t.Logf("%v", err)
	}
}

func TestBadInput(t *testing.T) {
	d := loadTiny(t, "tiny-sd")
	ctx := context.Background()
	for _, x := range []*tensor.Dense{
		nil,
		tensor.New(tensor.WithShape(1, 3, 4, 4), tensor.Of(tensor.Float32)),
		tensor.New(tensor.WithShape(4, 4, 4), tensor.Of(tensor.Float32)),
		tensor.New(tensor.WithShape(1, 4, 4, 4), tensor.Of(tensor.Float64)),
	} {
		if _, err := d.Decode(ctx, x); err == nil {
			t.Errorf("Decode(%v) succeeded", x)
		} else {
			t.Logf("%v", err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	x := tensor.New(tensor.WithShape(1, 4, 4, 4), tensor.Of(tensor.Float32))
	if _, err := d.Decode(cancelled, x); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err = %v", err)
	}
	// The program is still usable after a cancelled run.
	if _, err := d.Decode(ctx, x); err != nil {
		t.Errorf("after a cancelled run: %v", err)
	}
	d.Close()
	if _, err := d.Decode(ctx, x); err == nil {
		t.Error("Decode after Close succeeded")
	}
}

func TestConcurrentDecode(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	d := loadTiny(t, "tiny-sd")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		c := []string{"sq", "rect"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := d.Decode(context.Background(), dense(f.Must(t, "vae."+c+".latents")))
			if err != nil {
				errs <- err
				return
			}
			maxErr, maxRef := golden.MaxAbsDiff(f32(got), f.Must(t, "vae."+c+".decoded").Data)
			if maxErr > decodeTol*max(1, maxRef) {
				errs <- errors.New(c + ": concurrent decode differs from the reference")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
