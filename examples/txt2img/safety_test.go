package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// copyTree copies the folder src into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, rel), data, 0o644)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// safetyModel is tiny-sd plus tiny-sd-safety's safety_checker and feature_extractor, listed in
// model_index.json as small-sd lists them.
func safetyModel(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "tiny-sd-safe")
	copyTree(t, golden.Path("tiny-sd"), dir)
	copyTree(t, golden.Path("tiny-sd-safety"), dir)
	idx := filepath.Join(dir, "model_index.json")
	data, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), "\"feature_extractor\": [\n    null,\n    null\n  ]", `"feature_extractor": ["transformers", "CLIPImageProcessor"]`, 1)
	s = strings.Replace(s, "\"safety_checker\": [\n    null,\n    null\n  ]", `"safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"]`, 1)
	if !strings.Contains(s, "StableDiffusionSafetyChecker") || !strings.Contains(s, "CLIPImageProcessor") {
		t.Fatal("could not edit model_index.json")
	}
	if err := os.WriteFile(idx, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// With the safety checker (on by default) e2e.pndm's image is flagged: txt2img writes it black,
// says NSFW on stderr and succeeds; with -safety=false it writes the reference image.
func TestRunSafetyChecker(t *testing.T) {
	ref := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	model := safetyModel(t)
	c := loadCase(t, "e2e.pndm")
	out := filepath.Join(t.TempDir(), "img.png")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), c.args(t, model, out), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	t.Logf("stdout:\n%s", stdout.String())
	if !strings.Contains(stderr.String(), "NSFW") {
		t.Errorf("no NSFW line on stderr:\n%s", stderr.String())
	}
	img, _ := readPNG(t, out)
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, g, bl, a := img.At(x, y).RGBA(); r|g|bl != 0 || a != 0xffff {
				t.Fatalf("pixel (%d,%d) is %v, want opaque black", x, y, img.At(x, y))
			}
		}
	}

	stdout.Reset()
	stderr.Reset()
	if err := run(context.Background(), append(c.args(t, model, out), "-safety=false"), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "NSFW") {
		t.Errorf("NSFW line with -safety=false:\n%s", stderr.String())
	}
	img, _ = readPNG(t, out)
	golden.CheckImageU8(t, "e2e.pndm -safety=false", img, ref.Must(t, "e2e.pndm.image_u8"))
}
