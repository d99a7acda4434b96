package pipeline

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"unsafe"

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
			writeSyntheticSafetensors(tb, filepath.Join(cdir, name), m, v == "fp16")
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

// writeSyntheticSafetensors writes the manifest's tensors with their synthetic values to path
// (F32, or F16 rounded to nearest even), one tensor in memory at a time.
func writeSyntheticSafetensors(tb testing.TB, path string, m []weights.Request, fp16 bool) {
	type info struct {
		Dtype   string `json:"dtype"`
		Shape   []int  `json:"shape"`
		Offsets [2]int `json:"data_offsets"`
	}
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	size, dt := 4, "F32"
	if fp16 {
		size, dt = 2, "F16"
	}
	off := 0
	for _, r := range m {
		n := 1
		for _, d := range r.Shape {
			n *= d
		}
		header[r.Name] = info{dt, r.Shape, [2]int{off, off + n*size}}
		off += n * size
	}
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	_ = binary.Write(w, binary.LittleEndian, uint64(len(h)))
	w.Write(h)
	var buf []float32
	var half []uint16
	for _, r := range m {
		n := 1
		for _, d := range r.Shape {
			n *= d
		}
		buf = append(buf[:0], make([]float32, n)...)
		weights.FillSynthetic(buf, r.Name, r.Shape)
		var raw []byte
		if fp16 {
			half = append(half[:0], make([]uint16, n)...)
			for i, v := range buf {
				half[i] = weights.Float32ToHalf(v)
			}
			raw = unsafe.Slice((*byte)(unsafe.Pointer(&half[0])), 2*n)
		} else {
			raw = unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), 4*n)
		}
		if _, err := w.Write(raw); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
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
