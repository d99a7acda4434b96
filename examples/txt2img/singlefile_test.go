package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// TestRunSingleFile: -model FILE.safetensors -config FOLDER gives the reference image.
func TestRunSingleFile(t *testing.T) {
	ref := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	c := loadCase(t, "e2e.pndm")
	out := filepath.Join(t.TempDir(), "img.png")
	var stdout, stderr bytes.Buffer
	args := append(c.args(t, golden.Path("single-file", "tiny-sd.ldm.safetensors"), out), "-config", golden.Path("tiny-sd"))
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	img, p := readPNG(t, out)
	golden.CheckImageU8(t, "e2e.pndm from the single file", img, ref.Must(t, "e2e.pndm.image_u8"))
	if p.Model != "tiny-sd.ldm" {
		t.Errorf("Model %q in the parameters, want tiny-sd.ldm", p.Model)
	}
}
