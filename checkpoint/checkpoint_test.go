package checkpoint

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/unet"
	"github.com/smallsd/smallsd/vae"
	"github.com/smallsd/smallsd/weights"
)

var (
	ldmSafetensors = golden.Path("single-file", "tiny-sd.ldm.safetensors")
	ldmCkpt        = golden.Path("single-file", "tiny-sd.ldm.ckpt")
)

// compareFolder checks that every tensor of the tiny-sd folder's component reads back equal
// through the checkpoint's view (round(x) applied to the folder's values), and returns how
// many were compared.
func compareFolder(t *testing.T, v weights.View, component string, round func(float32) float32) int {
	t.Helper()
	s, err := weights.Open(golden.Path("tiny-sd", component))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	for _, name := range s.Names() {
		if name == "text_model.embeddings.position_ids" {
			continue
		}
		want, err := s.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.Tensor(name, want.Shape()...)
		if err != nil {
			t.Fatalf("%s: %v", component, err)
		}
		g, w := got.Float32s()[:got.Size()], want.Float32s()[:want.Size()]
		for i := range w {
			if g[i] != round(w[i]) {
				t.Fatalf("%s %s[%d] = %v, want %v", component, name, i, g[i], round(w[i]))
			}
		}
		n++
	}
	return n
}

func testMapsEveryTensor(t *testing.T, path string, round func(float32) float32) {
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.LayersPerBlock() != 1 {
		t.Errorf("layers_per_block %d, want 1", f.LayersPerBlock())
	}
	n := compareFolder(t, f.UNet(), "unet", round)
	n += compareFolder(t, f.VAE(), "vae", round)
	n += compareFolder(t, f.TextEncoder(), "text_encoder", round)
	if un := f.Store().Unused(); len(un) > 0 {
		t.Errorf("tensors of %s no diffusers name reached: %v", path, un)
	}
	t.Logf("%s: %d tensors equal to tiny-sd's bit for bit, none left over", filepath.Base(path), n)
}

func TestMapsEveryTensor(t *testing.T) {
	testMapsEveryTensor(t, ldmSafetensors, func(x float32) float32 { return x })
}

func TestCkptFP16(t *testing.T) {
	testMapsEveryTensor(t, ldmCkpt, func(x float32) float32 { return weights.HalfToFloat32(weights.Float32ToHalf(x)) })
}

// TestInferredConfigs: the configs inferred from the tiny file agree with tiny-sd's own on
// everything the tensors show.
func TestInferredConfigs(t *testing.T) {
	f, err := Open(ldmSafetensors)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	uc, err := f.UNetConfig()
	if err != nil {
		t.Fatal(err)
	}
	want, err := unet.LoadConfig(golden.Path("tiny-sd", "unet"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key       string
		got, want any
	}{
		{"layers_per_block", uc.LayersPerBlock, want.LayersPerBlock},
		{"block_out_channels", uc.BlockOutChannels, want.BlockOutChannels},
		{"down_block_types", uc.DownBlockTypes, want.DownBlockTypes},
		{"up_block_types", uc.UpBlockTypes, want.UpBlockTypes},
		{"mid_block_type", uc.MidBlockType, want.MidBlockType},
		{"cross_attention_dim", uc.CrossAttentionDim, want.CrossAttentionDim},
		{"in_channels", uc.InChannels, want.InChannels},
		{"out_channels", uc.OutChannels, want.OutChannels},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("unet %s = %v, want %v", c.key, c.got, c.want)
		}
	}
	vc, err := f.VAEConfig()
	if err != nil {
		t.Fatal(err)
	}
	wv, err := vae.LoadConfig(golden.Path("tiny-sd", "vae"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(vc.BlockOutChannels, wv.BlockOutChannels) || vc.LayersPerBlock != wv.LayersPerBlock || vc.LatentChannels != wv.LatentChannels {
		t.Errorf("vae config %+v, want %+v", vc, wv)
	}
	tc, err := f.TextEncoderConfig()
	if err != nil {
		t.Fatal(err)
	}
	wt, err := clip.LoadConfig(golden.Path("tiny-sd", "text_encoder"))
	if err != nil {
		t.Fatal(err)
	}
	if tc.VocabSize != wt.VocabSize || tc.HiddenSize != wt.HiddenSize || tc.NumHiddenLayers != wt.NumHiddenLayers ||
		tc.IntermediateSize != wt.IntermediateSize || tc.MaxPositionEmbeddings != wt.MaxPositionEmbeddings {
		t.Errorf("text config %+v, want %+v", tc, wt)
	}
}

// readKeymap reads the full-size SD 1.x UNet key list: LDM name, diffusers name, shape.
func readKeymap(t *testing.T) (rows [][2]string, manifest []weights.Request) {
	t.Helper()
	fh, err := os.Open(golden.Path("single-file", "ldm-keymap-sd15.tsv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("keymap line %q", line)
		}
		var shape []int
		if err := json.Unmarshal([]byte(f[2]), &shape); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, [2]string{f[0], f[1]})
		manifest = append(manifest, weights.Request{Name: f[0], Shape: shape})
	}
	return rows, manifest
}

// TestKeymapSD15 maps the 686 UNet keys of a real SD 1.x (layers_per_block 2) checkpoint, and
// infers SD 1.5's UNet config from their shapes.
func TestKeymapSD15(t *testing.T) {
	rows, manifest := readKeymap(t)
	// A stand-in file with those keys and shapes, and a minimal VAE and text encoder.
	manifest = append(manifest,
		weights.Request{Name: "first_stage_model.decoder.up.0.block.0.conv1.weight", Shape: []int{128, 128, 3, 3}},
		weights.Request{Name: "cond_stage_model.transformer.text_model.final_layer_norm.weight", Shape: []int{768}})
	s, err := weights.NewSyntheticFromManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	f := &File{store: s, path: "sd15 keymap"}
	if err := f.init(); err != nil {
		t.Fatal(err)
	}
	if f.LayersPerBlock() != 2 {
		t.Fatalf("layers_per_block %d, want 2", f.LayersPerBlock())
	}
	u := f.UNet()
	for _, r := range rows {
		l, ok := f.unet.ldm(r[1])
		if !ok || unetPrefix+l != r[0] {
			t.Errorf("%s → %q (%v), want %s", r[1], unetPrefix+l, ok, r[0])
		}
		if !u.Has(r[1]) {
			t.Errorf("view lacks %s", r[1])
		}
	}
	t.Logf("%d SD 1.x UNet keys map as the reference does", len(rows))
	c, err := f.UNetConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := unet.DefaultConfig()
	want.SampleSize = 64
	want.CrossAttentionDim = unet.IntList{768}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("inferred config\n%+v\nwant SD 1.5's\n%+v", c, want)
	}
}

// writeST writes a safetensors file of F32 zeros with the given names and shapes.
func writeST(t *testing.T, tensors map[string][]int) string {
	t.Helper()
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	hdr := map[string]any{}
	off := 0
	for _, n := range names {
		size := 4
		for _, d := range tensors[n] {
			size *= d
		}
		hdr[n] = map[string]any{"dtype": "F32", "shape": tensors[n], "data_offsets": []int{off, off + size}}
		off += size
	}
	h, _ := json.Marshal(hdr)
	data := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	data = append(append(data, h...), make([]byte, off)...)
	p := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadFiles(t *testing.T) {
	good, err := os.ReadFile(ldmSafetensors)
	if err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(t.TempDir(), "truncated.safetensors")
	if err := os.WriteFile(trunc, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	sd2 := map[string][]int{
		"model.diffusion_model.input_blocks.0.0.weight":  {320, 4, 3, 3},
		"first_stage_model.decoder.conv_in.weight":       {512, 4, 3, 3},
		"cond_stage_model.model.token_embedding.weight":  {8, 16},
		"cond_stage_model.model.positional_embedding":    {7, 16},
		"model.diffusion_model.input_blocks.3.0.op.bias": {320},
	}
	cases := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(t.TempDir(), "nope.safetensors"), "no such file"},
		{"truncated", trunc, "truncated.safetensors"},
		{"sdxl", writeST(t, map[string][]int{"conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": {768}}), "SDXL"},
		{"sd2", writeST(t, sd2), "SD 2.x"},
		{"lora", golden.Path("lora", "lora-kohya.safetensors"), "LoRA"},
		{"lora diffusers", golden.Path("lora", "lora-diffusers.safetensors"), "LoRA"},
		{"diffusers component", golden.Path("tiny-sd", "unet", "diffusion_pytorch_model.safetensors"), "no model.diffusion_model.*"},
		{"no downsampler", writeST(t, map[string][]int{"model.diffusion_model.x": {1}, "first_stage_model.x": {1}, "cond_stage_model.transformer.x": {1}}), "downsampler"},
	}
	for _, c := range cases {
		f, err := Open(c.path)
		if err == nil {
			f.Close()
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
		}
		t.Logf("%s: %v", c.name, err)
	}
}

// TestMissingAndMisshapen: errors name the LDM tensor, the diffusers name and the shapes.
func TestMissingAndMisshapen(t *testing.T) {
	f, err := Open(ldmSafetensors)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = f.UNet().Tensor("down_blocks.3.attentions.0.proj_in.weight")
	if err == nil || !strings.Contains(err.Error(), "model.diffusion_model.input_blocks.7.1.proj_in.weight") {
		t.Errorf("missing: %v", err)
	}
	_, err = f.UNet().Tensor("conv_in.weight", 7, 7)
	if err == nil || !strings.Contains(err.Error(), "input_blocks.0.0.weight") || !strings.Contains(err.Error(), "[7 7]") {
		t.Errorf("misshapen: %v", err)
	}
	_, err = f.UNet().Tensor("add_embedding.linear_1.weight")
	if err == nil || !strings.Contains(err.Error(), "no LDM counterpart") {
		t.Errorf("unknown: %v", err)
	}
	if err := f.CheckUnused("unet"); err == nil || !strings.Contains(err.Error(), "model.diffusion_model.") {
		t.Errorf("CheckUnused before use: %v", err)
	}
}

// FuzzNames: the name mappings never panic and only ever produce names under a known block.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"down_blocks.0.resnets.0.conv1.weight", "up_blocks.3.upsamplers.0.conv.bias",
		"mid_block.attentions.0.proj_in.weight", "decoder.mid_block.attentions.0.to_out.0.weight",
		"encoder.down_blocks.1.downsamplers.0.conv.weight", "decoder.up_blocks.9.resnets.-1.x", ".", "mid_block.resnets.1"} {
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, name string, n int) {
		n = 2 + int(math.Abs(float64(n%5)))
		m := unetMap{n: n, has: func(string) bool { return n%2 == 0 }}
		if l, ok := m.ldm(name); ok && l == "" {
			t.Fatalf("%q → empty", name)
		}
		if l, ok := (vaeMap{levels: n}).ldm(name); ok && l == "" {
			t.Fatalf("%q → empty", name)
		}
	})
}

// TestLegacyVAENames: the VAE attention is also reachable under diffusers' pre-0.14 names.
func TestLegacyVAENames(t *testing.T) {
	f, err := Open(ldmSafetensors)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := f.VAE().Sub("decoder.mid_block.attentions.0")
	for _, p := range [][2]string{{"query", "to_q"}, {"key", "to_k"}, {"value", "to_v"}, {"proj_attn", "to_out.0"}} {
		a, err := v.Tensor(p[0]+".weight", 32, 32)
		if err != nil {
			t.Fatal(err)
		}
		b, err := v.Tensor(p[1]+".weight", a.Shape()...)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a.Float32s(), b.Float32s()) || len(a.Shape()) != 2 {
			t.Errorf("%s and %s differ (shape %v)", p[0], p[1], a.Shape())
		}
	}
}

// TestExtraKeysIgnored: EMA weights, schedule buffers and the position_ids buffer are not
// reported as unused.
func TestExtraKeysIgnored(t *testing.T) {
	_, manifest := readKeymap(t)
	manifest = append(manifest,
		weights.Request{Name: "first_stage_model.decoder.up.0.block.0.conv1.weight", Shape: []int{128, 128, 3, 3}},
		weights.Request{Name: "cond_stage_model.transformer.text_model.embeddings.position_ids", Shape: []int{1, 77}},
		weights.Request{Name: "model_ema.diffusion_modelinput_blocks00weight", Shape: []int{320, 4, 3, 3}},
		weights.Request{Name: "model_ema.decay", Shape: []int{1}},
		weights.Request{Name: "alphas_cumprod", Shape: []int{1000}})
	s, err := weights.NewSyntheticFromManifest(manifest)
	if err != nil {
		t.Fatal(err)
	}
	f := &File{store: s, path: "sd15 keymap"}
	if err := f.init(); err != nil {
		t.Fatal(err)
	}
	if err := f.CheckUnused("text_encoder", "text_model.embeddings.position_ids"); err != nil {
		t.Error(err)
	}
	// Nothing of the UNet was fetched: the error lists UNet tensors only.
	err = f.CheckUnused("unet")
	if err == nil || strings.Contains(err.Error(), "model_ema") || strings.Contains(err.Error(), "alphas_cumprod") {
		t.Errorf("CheckUnused(unet): %v", err)
	}
}
