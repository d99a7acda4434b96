package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// TestRunLoRA: -lora FILE:0.7 gives diffusers' image with the LoRA at 0.7, and the PNG
// parameters carry <lora:name:0.7> in the prompt as the web UI writes it.
func TestRunLoRA(t *testing.T) {
	ref := golden.MustOpen(t, golden.Path("lora", "lora-golden.safetensors"))
	c := loadCase(t, "e2e.pndm")
	out := filepath.Join(t.TempDir(), "img.png")
	var stdout, stderr bytes.Buffer
	args := append(c.args(t, golden.Path("tiny-sd"), out), "-lora", golden.Path("lora", "lora-kohya.safetensors")+":0.7")
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	img, p := readPNG(t, out)
	golden.CheckImageU8(t, "lora.e2e.scale0.7", img, ref.Must(t, "lora.e2e.scale0.7.image_u8"))
	if want := c.Prompt + " <lora:lora-kohya:0.7>"; p.Prompt != want {
		t.Errorf("prompt in the parameters %q, want %q", p.Prompt, want)
	}
	err := run(context.Background(), append(c.args(t, golden.Path("tiny-sd"), out), "-lora", "missing.safetensors:0.5"), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "missing.safetensors") {
		t.Errorf("missing -lora file: %v", err)
	}
}
