package unet

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// tinyTensors reads every tensor of the tiny UNet into memory.
func tinyTensors(t *testing.T) map[string]*tensor.Dense {
	t.Helper()
	s, err := weights.Open(golden.Path("tiny-sd", "unet"), weights.WithCopy())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := map[string]*tensor.Dense{}
	for _, name := range s.Names() {
		d, err := s.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		m[name] = d
	}
	return m
}

func tinyConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := LoadConfig(golden.Path("tiny-sd", "unet", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestMissingAndMisshapedTensors(t *testing.T) {
	cfg := tinyConfig(t)
	for _, c := range []struct {
		name   string
		edit   func(map[string]*tensor.Dense)
		expect []string
	}{
		{"missing", func(m map[string]*tensor.Dense) {
			delete(m, "up_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight")
		},
			[]string{"up_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight"}},
		{"misshaped", func(m map[string]*tensor.Dense) {
			m["down_blocks.1.resnets.0.conv1.weight"] = tensor.New(tensor.WithShape(32, 32, 1, 1), tensor.Of(tensor.Float32))
		}, []string{"down_blocks.1.resnets.0.conv1.weight", "[32 32 3 3]", "[32 32 1 1]"}},
		{"missing mid block", func(m map[string]*tensor.Dense) { delete(m, "mid_block.resnets.1.norm2.bias") },
			[]string{"mid_block.resnets.1.norm2.bias"}},
	} {
		ts := tinyTensors(t)
		c.edit(ts)
		s, err := weights.FromTensors("edited tiny unet", ts)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(cfg, s.View())
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		msg := strings.ReplaceAll(err.Error(), ",", "")
		for _, e := range c.expect {
			if !strings.Contains(msg, strings.ReplaceAll(e, ",", "")) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, e)
			}
		}
		t.Logf("%s: %v", c.name, err)
	}
}

// copyTinyWith makes a unet folder with the tiny weights and an edited config.
func copyTinyWith(t *testing.T, changes map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Rename(writeConfig(t, changes), filepath.Join(dir, "config.json")); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(golden.Path("tiny-sd", "unet", "diffusion_pytorch_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "diffusion_pytorch_model.safetensors"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("empty folder: no error")
	} else {
		t.Logf("empty folder: %v", err)
	}
	// A config that does not describe the checkpoint: too many resnets → a missing tensor.
	if _, err := Load(copyTinyWith(t, map[string]string{"layers_per_block": "2"})); err == nil || !strings.Contains(err.Error(), "down_blocks.0.resnets.1") {
		t.Errorf("layers_per_block 2 on a 1-layer checkpoint: %v", err)
	} else {
		t.Logf("layers_per_block 2: %v", err)
	}
	// No mid block in the config, one in the checkpoint → unused tensors are an error.
	if _, err := Load(copyTinyWith(t, map[string]string{"mid_block_type": "null"})); err == nil || !strings.Contains(err.Error(), "mid_block.") {
		t.Errorf("mid_block_type null on a checkpoint with one: %v", err)
	} else {
		t.Logf("mid_block_type null: %v", err)
	}
}

// TestNoMidBlock builds a model without a mid block (mid_block_type null) from the tiny
// weights and runs it: the down path feeds the up path directly.
func TestNoMidBlock(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.MidBlockType = ""
	s, err := weights.FromTensors("tiny unet", tinyTensors(t))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, s.View())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range s.Unused() {
		if !strings.HasPrefix(name, "mid_block.") {
			t.Errorf("unused tensor %s", name)
		}
	}
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	text := dense(f.Must(t, "text.last_hidden_state"))
	sample := dense(f.Must(t, "unet.sq.sample"))
	taps, err := m.ForwardTaps(context.Background(), sample, 981, text, []string{"down_blocks.3", "up_blocks.0.resnets.0", "out"})
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := m.TapNames(); strings.Contains(strings.Join(names, " "), "mid_block") {
		t.Errorf("tap names mention a mid block: %v", names)
	}
	// up_blocks.0 must see down_blocks.3's output: check against the full model on the same
	// input, whose down path is identical.
	full := loadTiny(t, "tiny-sd")
	ref, err := full.ForwardTaps(context.Background(), sample, 981, text, []string{"down_blocks.3"})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range taps["down_blocks.3"].Float32s() {
		if v != ref["down_blocks.3"].Float32s()[i] {
			t.Fatalf("down path differs at %d", i)
		}
	}
	out := taps["out"].Float32s()
	for _, v := range out {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("non-finite output")
		}
	}
	if got := taps["out"].Shape(); !equalShape(got, []int{2, 4, 16, 16}) {
		t.Errorf("output shape %v", got)
	}
}

func TestForwardErrors(t *testing.T) {
	m := loadTiny(t, "tiny-sd")
	ctx := context.Background()
	f32 := func(shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	}
	good, text := f32(1, 4, 8, 8), f32(1, 77, 32)
	for _, c := range []struct {
		name         string
		sample, text *tensor.Dense
	}{
		{"channels", f32(1, 3, 8, 8), text},
		{"rank", f32(4, 8, 8), text},
		{"float64", tensor.New(tensor.WithShape(1, 4, 8, 8), tensor.Of(tensor.Float64)), text},
		{"text batch", good, f32(2, 77, 32)},
		{"text width", good, f32(1, 77, 768)},
		{"nil text", good, nil},
	} {
		if _, err := m.Forward(ctx, c.sample, 981, c.text); err == nil {
			t.Errorf("%s: no error", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
	if _, err := m.ForwardTaps(ctx, good, 981, text, []string{"down_blocks.9"}); err == nil || !strings.Contains(err.Error(), "down_blocks.9") {
		t.Errorf("unknown tap: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Forward(cancelled, good, 981, text); err == nil {
		t.Error("cancelled context: no error")
	}
	closed, err := Load(golden.Path("tiny-sd", "unet"))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if _, err := closed.Forward(ctx, good, 981, text); err == nil {
		t.Error("closed model: no error")
	}
	// Sizes that are not multiples of 8 take diffusers' upsample_size path.
	out, err := m.Forward(ctx, f32(1, 4, 12, 20), 981, text)
	if err != nil {
		t.Fatal(err)
	}
	if !equalShape(out.Shape(), []int{1, 4, 12, 20}) {
		t.Errorf("12×20 sample: output %v", out.Shape())
	}
}

// TestConcurrentForward runs two shapes from several goroutines and compares each result with
// a sequential run.
func TestConcurrentForward(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	text := dense(f.Must(t, "text.last_hidden_state"))
	samples := []*tensor.Dense{dense(f.Must(t, "unet.sq.sample")), dense(f.Must(t, "unet.rect.sample"))}
	var want [2][]float32
	for i, s := range samples {
		out, err := m.Forward(context.Background(), s, 500, text)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = out.Float32s()
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, err := m.Forward(context.Background(), samples[i], 500, text)
			if err != nil {
				errs <- err.Error()
				return
			}
			for j, v := range out.Float32s() {
				if v != want[i][j] {
					errs <- "concurrent result differs"
					return
				}
			}
		}(g % 2)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestLinearProjection checks the use_linear_projection path (SD 2.x) against the conv path:
// the tiny weights with proj_in/proj_out reshaped from C×C×1×1 to C×C must give the same
// result, since a 1×1 convolution is the same linear map applied per pixel.
func TestLinearProjection(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	ts := tinyTensors(t)
	n := 0
	for name, d := range ts {
		if (strings.HasSuffix(name, ".proj_in.weight") || strings.HasSuffix(name, ".proj_out.weight")) && d.Dims() == 4 {
			s := d.Shape()
			ts[name] = tensor.New(tensor.WithShape(s[0], s[1]), tensor.WithBacking(d.Float32s()))
			n++
		}
	}
	if n == 0 {
		t.Fatal("no proj_in/proj_out weights found")
	}
	s, err := weights.FromTensors("tiny unet, linear projections", ts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig(t)
	cfg.UseLinearProjection = true
	cfg.AttentionHeadDim = IntList{8, 8, 8, 8}
	cfg.UpcastAttention = true
	m, err := New(cfg, s.View())
	if err != nil {
		t.Fatal(err)
	}
	if u := s.Unused(); len(u) != 0 {
		t.Fatalf("unused tensors: %v", u)
	}
	out, err := m.Forward(context.Background(), dense(f.Must(t, "unet.rect.sample")), 981, dense(f.Must(t, "text.last_hidden_state")))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d projection weights reshaped", n)
	golden.Check(t, "unet.rect.t981.out with linear projections", out.Float32s(), f.Must(t, "unet.rect.t981.out"), tol)
}
