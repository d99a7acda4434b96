package hub

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestConfigsOnly: WithConfigsOnly fetches the configs, tokenizer and scheduler config and no
// weights, and a later offline call is satisfied by them.
func TestConfigsOnly(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	f.add(tinyRepo(t, "org/tiny"))
	cache := t.TempDir()
	dir, err := Download(context.Background(), "org/tiny", f.opts(cache, WithConfigsOnly())...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
		"tokenizer/vocab.json", "tokenizer/merges.txt", "scheduler/scheduler_config.json"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s fetched", p)
		}
	}
	if _, err := Download(context.Background(), "org/tiny", f.opts(cache, WithConfigsOnly(), WithOffline(true))...); err != nil {
		t.Errorf("offline configs-only: %v", err)
	}
	if _, err := Download(context.Background(), "org/tiny", f.opts(cache, WithOffline(true))...); err == nil {
		t.Error("offline full download satisfied by a configs-only snapshot")
	}
}
