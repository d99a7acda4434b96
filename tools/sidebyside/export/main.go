// Command export writes the full-size synthetic weights of testdata/SYNTHETIC.md (the weights
// smallsd's benchmarks run on, weights.NewSynthetic) to safetensors files with diffusers'
// tensor names, next to the models' config.json files, so that other runtimes can load exactly
// the same models: the small-sd UNet, the SD VAE decoder (post_quant_conv and decoder) and the
// CLIP ViT-L/14 text encoder. It is part of tools/sidebyside (see its README.md).
//
// Usage (from the repository root):
//
//	go run ./tools/sidebyside/export -out /work/sxs-scratch/models
//
// It writes OUT/unet, OUT/vae_decoder and OUT/text_encoder, about 2.7 GB in all, and skips a
// file that is already there with the same header.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/smallsd/smallsd/weights"
)

// component is one model to export: which manifest lists its tensors, which of them to keep,
// which config describes it, and the file names diffusers gives them.
type component struct {
	dir      string // output folder under -out
	manifest string // under testdata/manifests
	keep     func(name string) bool
	config   string // under testdata/configs
	file     string // weight file name
}

var components = []component{
	{"unet", "unet-small-sd.txt", nil, "unet", "diffusion_pytorch_model.safetensors"},
	{"vae_decoder", "vae-sd.txt", func(n string) bool {
		return strings.HasPrefix(n, "decoder.") || strings.HasPrefix(n, "post_quant_conv.")
	}, "vae", "diffusion_pytorch_model.safetensors"},
	{"text_encoder", "clip-text-l14.txt", nil, "text_encoder", "model.safetensors"},
}

func main() {
	out := flag.String("out", "/work/sxs-scratch/models", "output folder")
	testdata := flag.String("testdata", "testdata", "the repository's testdata folder")
	flag.Parse()
	for _, c := range components {
		if err := export(c, *testdata, *out); err != nil {
			fmt.Fprintln(os.Stderr, "export:", err)
			os.Exit(1)
		}
	}
}

func export(c component, testdata, out string) error {
	reqs, err := weights.ReadManifest(filepath.Join(testdata, "manifests", c.manifest))
	if err != nil {
		return err
	}
	if c.keep != nil {
		kept := reqs[:0]
		for _, r := range reqs {
			if c.keep(r.Name) {
				kept = append(kept, r)
			}
		}
		reqs = kept
	}
	dir := filepath.Join(out, c.dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg, err := os.ReadFile(filepath.Join(testdata, "configs", c.config, "config.json"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		return err
	}
	header, err := weights.SyntheticHeader(reqs, false)
	if err != nil {
		return fmt.Errorf("%s: %w", c.dir, err)
	}
	path := filepath.Join(dir, c.file)
	if sameHeader(path, header) {
		fmt.Printf("%s: up to date\n", path)
		return nil
	}
	if err := weights.WriteSynthetic(path, reqs, false); err != nil {
		return err
	}
	var params int64
	for _, r := range reqs {
		params += int64(numel(r.Shape))
	}
	fmt.Printf("%s: %d tensors, %d parameters\n", path, len(reqs), params)
	return nil
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// sameHeader reports whether the file at path starts with header (and so holds these tensors:
// the data follow from the names and shapes).
func sameHeader(path string, header []byte) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	got := make([]byte, len(header))
	if _, err := io.ReadFull(f, got); err != nil || !bytes.Equal(got, header) {
		return false
	}
	st, err := f.Stat()
	if err != nil {
		return false
	}
	size := int64(len(header))
	for _, r := range tensorSizes(header) {
		size += r
	}
	return st.Size() == size
}

// tensorSizes returns the byte sizes of the tensors a header lists.
func tensorSizes(header []byte) []int64 {
	var m map[string]json.RawMessage
	if json.Unmarshal(header[8:], &m) != nil {
		return nil
	}
	var sizes []int64
	for k, v := range m {
		if k == "__metadata__" {
			continue
		}
		var e struct {
			Offsets [2]int64 `json:"data_offsets"`
		}
		if json.Unmarshal(v, &e) == nil {
			sizes = append(sizes, e.Offsets[1]-e.Offsets[0])
		}
	}
	return sizes
}
