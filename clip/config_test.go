package clip

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigFiles(t *testing.T) {
	tiny, err := LoadConfig(golden.Path("tiny-sd", "text_encoder"))
	if err != nil {
		t.Fatal(err)
	}
	if tiny.HiddenSize != 32 || tiny.NumHiddenLayers != 2 || tiny.NumAttentionHeads != 4 || tiny.IntermediateSize != 37 ||
		tiny.VocabSize != 795 || tiny.EosTokenID != 794 || tiny.HiddenAct != QuickGELU {
		t.Errorf("tiny config read as %+v", tiny)
	}
	l14 := l14Config(t)
	if l14.HiddenSize != 768 || l14.NumHiddenLayers != 12 || l14.NumAttentionHeads != 12 || l14.IntermediateSize != 3072 ||
		l14.VocabSize != 49408 || l14.MaxPositionEmbeddings != 77 || l14.EosTokenID != 2 || l14.LayerNormEps != 1e-5 {
		t.Errorf("L/14 config read as %+v", l14)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, `{"hidden_size": 64, "num_attention_heads": 4, "some_unknown_key": [1, 2]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.HiddenSize, want.NumAttentionHeads = 64, 4
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
	// null keeps the default, as transformers' None falls back for these keys.
	if c, err = LoadConfig(writeConfig(t, `{"eos_token_id": null}`)); err != nil || c.EosTokenID != 49407 {
		t.Errorf("eos_token_id null: %+v, %v", c, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ body, key string }{
		{`{"hidden_act": "relu"}`, "hidden_act"},
		{`{"hidden_act": "gelu_new"}`, "hidden_act"},
		{`{"hidden_size": 100, "num_attention_heads": 8}`, "num_attention_heads"},
		{`{"num_attention_heads": 0}`, "num_attention_heads"},
		{`{"hidden_size": 0}`, "hidden_size"},
		{`{"num_hidden_layers": 0}`, "num_hidden_layers"},
		{`{"intermediate_size": -1}`, "intermediate_size"},
		{`{"max_position_embeddings": 0}`, "max_position_embeddings"},
		{`{"vocab_size": 0}`, "vocab_size"},
		{`{"vocab_size": 20000000}`, "vocab_size"},
		{`{"layer_norm_eps": 0}`, "layer_norm_eps"},
		{`{"model_type": "clip"}`, "model_type"},
		{`{"hidden_size": "768"}`, "hidden_size"},
		{`{"layer_norm_eps": [1]}`, "layer_norm_eps"},
	} {
		_, err := LoadConfig(writeConfig(t, c.body))
		if err == nil || !strings.Contains(err.Error(), `"`+c.key+`"`) {
			t.Errorf("%s: error %v, want one naming %q", c.body, err, c.key)
		} else {
			t.Logf("%s: %v", c.body, err)
		}
	}
	if _, err := LoadConfig(writeConfig(t, `{"hidden_size": `)); err == nil {
		t.Error("truncated JSON accepted")
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
	// Both supported activations validate.
	for _, act := range []string{QuickGELU, GELU} {
		c := DefaultConfig()
		c.HiddenAct = act
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", act, err)
		}
	}
}
