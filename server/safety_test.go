package server

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/pipeline"
)

// With a safety checker, info.nsfw and the page's done event say which images it flagged:
// e2e.pndm's image trips the tiny checker, e2e.rect_nocfg's does not.
func TestNSFW(t *testing.T) {
	dir := t.TempDir()
	for _, src := range []string{"tiny-sd", "tiny-sd-safety"} {
		if err := os.CopyFS(dir, os.DirFS(golden.Path(src))); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	idx := filepath.Join(dir, "model_index.json")
	data, _ := os.ReadFile(idx)
	for _, c := range [][2]string{{"feature_extractor", `["transformers", "CLIPImageProcessor"]`},
		{"safety_checker", `["stable_diffusion", "StableDiffusionSafetyChecker"]`}} {
		data = bytes.Replace(data, []byte(`"`+c[0]+`": [
    null,
    null
  ]`), []byte(`"`+c[0]+`": `+c[1]), 1)
	}
	os.Chmod(idx, 0o644)
	if err := os.WriteFile(idx, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.HasSafetyChecker() {
		t.Fatal("no safety checker loaded")
	}
	s := New(p, WithLogger(testLogger(t)))
	defer s.Close()
	for _, c := range []struct {
		body string
		want bool
	}{
		{`{"prompt": "a apple, 4k", "steps": 4, "seed": 42, "width": 128, "height": 128, "sampler_name": "PLMS"}`, true},
		{`{"prompt": "a cat sitting on a windowsill", "steps": 3, "seed": 123456789, "width": 128, "height": 64, "cfg_scale": 1, "sampler_name": "PLMS"}`, false},
	} {
		rec := httptestRecorder(s, "/sdapi/v1/txt2img", c.body)
		_, info := decodeTxt2img(t, rec)
		if len(info.NSFW) != 1 || info.NSFW[0] != c.want {
			t.Errorf("%.40s: nsfw %v, want [%v]", c.body, info.NSFW, c.want)
		}
		stream := string(httptestRecorder(s, "/api/generate", c.body))
		if strings.Contains(stream, `"nsfw":true`) != c.want {
			t.Errorf("%.40s: the stream's done event does not say nsfw %v", c.body, c.want)
		}
	}
}
