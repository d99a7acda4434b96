package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
)

// syntheticModelDir returns a model folder in diffusers layout holding the full-size small-sd
// pipeline (configs from testdata/configs, the tokenizer as fullSizeSynthetic picks it) with the
// synthetic weights of testdata/SYNTHETIC.md written as safetensors files: float32, and with
// fp16 the fp16 variant (model.fp16.safetensors, …) too. Loading it is what a user does with a
// downloaded model: the weights are memory-mapped, not built in anonymous memory. The folder is
// written once per machine (about 3 GB, 1.5 GB more for fp16) under os.TempDir() and reused;
// writing it is done tensor by tensor, and the process's peak RSS is reset afterwards where the
// kernel allows (/proc/self/clear_refs), so the benchmark's peak is the loaded model's.
func syntheticModelDir(tb testing.TB, fp16 bool) string {
	dir := filepath.Join(os.TempDir(), "smallsd-synthetic-v1")
	comps := []struct{ name, manifest, file string }{
		{"text_encoder", "clip-text-l14.txt", "model"},
		{"unet", "unet-small-sd.txt", "diffusion_pytorch_model"},
		{"vae", "vae-sd.txt", "diffusion_pytorch_model"},
	}
	variants := []string{""}
	if fp16 {
		variants = append(variants, "fp16")
	}
	wrote := false
	for _, v := range variants {
		done := filepath.Join(dir, ".complete"+v)
		if _, err := os.Stat(done); err == nil {
			continue
		}
		wrote = true
		for _, c := range comps {
			cdir := filepath.Join(dir, c.name)
			if err := os.MkdirAll(cdir, 0o755); err != nil {
				tb.Fatal(err)
			}
			copyFile(tb, golden.Path("configs", c.name, "config.json"), filepath.Join(cdir, "config.json"))
			m, err := weights.ReadManifest(golden.Path("manifests", c.manifest))
			if err != nil {
				tb.Fatal(err)
			}
			name := c.file + ".safetensors"
			if v != "" {
				name = c.file + "." + v + ".safetensors"
			}
			if err := weights.WriteSynthetic(filepath.Join(cdir, name), m, v == "fp16"); err != nil {
				tb.Fatal(err)
			}
		}
		sdir := filepath.Join(dir, "scheduler")
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			tb.Fatal(err)
		}
		copyFile(tb, golden.Path("configs", "scheduler", "scheduler_config.json"), filepath.Join(sdir, "scheduler_config.json"))
		tokDir := fullSizeTokenizerDir(tb)
		tdir := filepath.Join(dir, "tokenizer")
		if err := os.MkdirAll(tdir, 0o755); err != nil {
			tb.Fatal(err)
		}
		for _, f := range []string{"vocab.json", "merges.txt"} {
			copyFile(tb, filepath.Join(tokDir, f), filepath.Join(tdir, f))
		}
		index := map[string]any{"_class_name": "StableDiffusionPipeline", "scheduler": []string{"diffusers", "PNDMScheduler"},
			"text_encoder": []string{"transformers", "CLIPTextModel"}, "tokenizer": []string{"transformers", "CLIPTokenizer"},
			"unet": []string{"diffusers", "UNet2DConditionModel"}, "vae": []string{"diffusers", "AutoencoderKL"}}
		b, _ := json.Marshal(index)
		if err := os.WriteFile(filepath.Join(dir, "model_index.json"), b, 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(done, nil, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	if wrote {
		runtime.GC()
		debug.FreeOSMemory()
		_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM
	}
	return dir
}

func copyFile(tb testing.TB, from, to string) {
	src, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		tb.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		tb.Fatal(fmt.Errorf("writing %s: %w", to, err))
	}
}
