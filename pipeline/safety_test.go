package pipeline

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// safetyModel is testdata/tiny-sd with the tiny safety checker and feature extractor of
// testdata/tiny-sd-safety, listed in model_index.json as the real small-sd lists them.
func safetyModel(t *testing.T) string {
	t.Helper()
	dir := copyModel(t)
	listSafetyChecker(t, dir)
	src := golden.Path("tiny-sd-safety")
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, rel), data, 0o644)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// The checker is on by default: e2e.pndm's image trips a concept and comes back black,
// e2e.rect_nocfg's does not and is the reference image.
func TestSafetyChecker(t *testing.T) {
	p, err := Load(safetyModel(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.HasSafetyChecker() {
		t.Fatal("no safety checker loaded")
	}
	res, err := p.Generate(context.Background(), loadCase(t, "e2e.pndm").request(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.NSFW) != 1 || !res.NSFW[0] {
		t.Fatalf("NSFW %v, want [true]", res.NSFW)
	}
	t.Logf("e2e.pndm: %v; checker took %v", res.Safety[0], res.Timings.Safety)
	if res.Timings.Safety <= 0 {
		t.Error("Timings.Safety not set")
	}
	img := res.Images[0]
	for i, v := range img.Pix {
		if want := map[bool]uint8{true: 255, false: 0}[i%4 == 3]; v != want {
			t.Fatalf("flagged image: byte %d is %d, want %d (black, opaque)", i, v, want)
		}
	}
	res = runCase(t, p, "e2e.rect_nocfg")
	if len(res.NSFW) != 1 || res.NSFW[0] {
		t.Fatalf("NSFW %v, want [false]", res.NSFW)
	}
}

// WithoutSafetyChecker gives the image as generated, no NSFW flags, and one warning line.
func TestWithoutSafetyChecker(t *testing.T) {
	var log bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&log, nil)))
	defer slog.SetDefault(old)
	p, err := Load(safetyModel(t), WithoutSafetyChecker())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	slog.SetDefault(old)
	t.Logf("log: %s", log.String())
	if n := strings.Count(log.String(), "\n"); n != 1 || !strings.Contains(log.String(), "safety checker is off") {
		t.Errorf("want one warning line about the safety checker, got %q", log.String())
	}
	if p.HasSafetyChecker() {
		t.Error("HasSafetyChecker with WithoutSafetyChecker")
	}
	res := runCase(t, p, "e2e.pndm")
	if res.NSFW != nil || res.Timings.Safety != 0 {
		t.Errorf("NSFW %v, Timings.Safety %v without a checker", res.NSFW, res.Timings.Safety)
	}

	// No warning for a model without a checker.
	log.Reset()
	slog.SetDefault(slog.New(slog.NewTextHandler(&log, nil)))
	p2, err := Load(golden.Path("tiny-sd"), WithoutSafetyChecker())
	slog.SetDefault(old)
	if err != nil {
		t.Fatal(err)
	}
	p2.Close()
	if log.Len() != 0 {
		t.Errorf("warning for a model without a checker: %q", log.String())
	}
}

// A safety_checker of another class, or a broken one, is an error naming it.
func TestSafetyCheckerErrors(t *testing.T) {
	dir := safetyModel(t)
	idx := filepath.Join(dir, "model_index.json")
	data, _ := os.ReadFile(idx)
	os.WriteFile(idx, bytes.Replace(data, []byte(`"StableDiffusionSafetyChecker"`), []byte(`"OtherChecker"`), 1), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "OtherChecker") {
		t.Errorf("other class: %v", err)
	}
	os.WriteFile(idx, data, 0o644)
	os.Remove(filepath.Join(dir, "safety_checker", "model.safetensors"))
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "safety_checker") {
		t.Errorf("no weights: %v", err)
	}
	t.Logf("no weights: %v", err)
	if p, err := Load(dir, WithoutSafetyChecker()); err != nil {
		t.Errorf("WithoutSafetyChecker on a broken checker: %v", err)
	} else {
		p.Close()
	}
}
