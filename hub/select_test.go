package hub

import (
	"strings"
	"testing"
)

func TestParseWeight(t *testing.T) {
	for name, want := range map[string]string{ // format/variant/sharded/index, "" = not a weight
		"diffusion_pytorch_model.safetensors":                  "safetensors//false/false",
		"diffusion_pytorch_model.bin":                          "bin//false/false",
		"model.fp16.safetensors":                               "safetensors/fp16/false/false",
		"pytorch_model.fp16.bin":                               "bin/fp16/false/false",
		"model.fp16-00001-of-00002.safetensors":                "safetensors/fp16/true/false",
		"model-00001-of-00002.fp16.safetensors":                "safetensors/fp16/true/false",
		"model-00002-of-00002.safetensors":                     "safetensors//true/false",
		"diffusion_pytorch_model.safetensors.index.json":       "safetensors//true/true",
		"diffusion_pytorch_model.safetensors.index.fp16.json":  "safetensors/fp16/true/true",
		"diffusion_flax_model.msgpack":                         "",
		"flax_model.msgpack":                                   "",
		"model.onnx":                                           "",
		"v1-5-pruned.ckpt":                                     "",
		"model.fp16-00001-of-00002.fp16.safetensors":           "",
		"config.json":                                          "",
		"diffusion_pytorch_model.non_ema.safetensors":          "safetensors/non_ema/false/false",
		"openvino_model.bin":                                   "",
		"unet/diffusion_pytorch_model.safetensors/../../x.bin": "",
	} {
		w, ok := parseWeight(name)
		got := ""
		if ok {
			got = strings.Join([]string{w.format, w.variant, boolStr(w.sharded), boolStr(w.index)}, "/")
		}
		if got != want {
			t.Errorf("parseWeight(%q) = %q, want %q", name, got, want)
		}
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestPlanComponent(t *testing.T) {
	unet := component{"unet", "diffusers", "UNet2DConditionModel"}
	cases := []struct {
		names   []string
		variant string
		want    string // files, then "|" fallback count, "|" missing
	}{
		{[]string{"config.json", "diffusion_pytorch_model.bin", "diffusion_pytorch_model.safetensors", "diffusion_flax_model.msgpack"}, "",
			"unet/config.json unet/diffusion_pytorch_model.safetensors|0|"},
		{[]string{"config.json", "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin"}, "fp16",
			"unet/config.json unet/diffusion_pytorch_model.fp16.bin|0|"},
		{[]string{"config.json", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.bin"}, "fp16",
			"unet/config.json unet/diffusion_pytorch_model.fp16.bin|0|"},
		{[]string{"config.json", "diffusion_pytorch_model.safetensors"}, "fp16",
			"unet/config.json unet/diffusion_pytorch_model.safetensors|1|"},
		{[]string{"config.json", "diffusion_pytorch_model.fp16.safetensors"}, "",
			"unet/config.json|0|unet/(weights: *.safetensors or *.bin)"},
		{[]string{"config.json", "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model-00001-of-00002.safetensors",
			"diffusion_pytorch_model-00002-of-00002.safetensors", "diffusion_pytorch_model.bin.index.json", "diffusion_pytorch_model-00001-of-00002.bin"}, "",
			"unet/config.json unet/diffusion_pytorch_model.safetensors.index.json unet/diffusion_pytorch_model-00001-of-00002.safetensors unet/diffusion_pytorch_model-00002-of-00002.safetensors|0|"},
		{[]string{"diffusion_pytorch_model.safetensors"}, "", "unet/diffusion_pytorch_model.safetensors|0|unet/config.json"},
	}
	for _, c := range cases {
		p := planComponent(unet, c.names, c.variant)
		got := strings.Join(p.files, " ") + "|" + string(rune('0'+len(p.fallback))) + "|" + strings.Join(p.missing, " ")
		if got != c.want {
			t.Errorf("%v %q:\n got %s\nwant %s", c.names, c.variant, got, c.want)
		}
	}
	tok := planComponent(component{"tokenizer", "transformers", "CLIPTokenizer"}, []string{"vocab.json", "tokenizer.json"}, "")
	if strings.Join(tok.files, " ") != "tokenizer/vocab.json" || strings.Join(tok.missing, " ") != "tokenizer/merges.txt" {
		t.Errorf("tokenizer plan %+v", tok)
	}
	sch := planComponent(component{"scheduler", "diffusers", "PNDMScheduler"}, []string{"scheduler_config.json"}, "fp16")
	if strings.Join(sch.files, " ") != "scheduler/scheduler_config.json" || len(sch.missing) != 0 {
		t.Errorf("scheduler plan %+v", sch)
	}
}

func TestParseModelIndex(t *testing.T) {
	comps, err := parseModelIndex([]byte(`{"_class_name": "StableDiffusionPipeline", "requires_safety_checker": true,
		"safety_checker": [null, null], "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
		"odd": ["a"], "num": 3}`))
	if err != nil || len(comps) != 2 || comps[0].name != "unet" || comps[1].class != "AutoencoderKL" {
		t.Errorf("%+v %v", comps, err)
	}
	for _, bad := range []string{`[`, `{"../x": ["a", "b"]}`, `{"a/b": ["a", "b"]}`} {
		if _, err := parseModelIndex([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// FuzzSelect: no model index and no listing makes the selection panic or escape the component folders.
func FuzzSelect(f *testing.F) {
	f.Add([]byte(`{"unet": ["diffusers", "UNet2DConditionModel"], "tokenizer": ["transformers", "CLIPTokenizer"]}`),
		"unet/config.json\nunet/diffusion_pytorch_model.fp16.safetensors\nunet/model-00001-of-00002.safetensors\ntokenizer/vocab.json", "fp16")
	f.Fuzz(func(t *testing.T, index []byte, listing, variant string) {
		comps, err := parseModelIndex(index)
		if err != nil {
			return
		}
		s := selectFiles(comps, strings.Split(listing, "\n"), variant, true)
		for _, p := range s.files[1:] {
			if strings.Contains(p, "..") || strings.Count(p, "/") != 1 || strings.HasPrefix(p, "/") {
				t.Errorf("selected %q", p)
			}
		}
	})
}
