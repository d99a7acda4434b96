package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/pipeline"
)

// TestLoRATags: <lora:name:scale> in a prompt applies the LoRA file of that name from the LoRA
// folder, as the web UI does; GET /sdapi/v1/loras lists the folder; unknown names and a server
// without a folder are 422s naming the prompt.
func TestLoRATags(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(golden.Path("lora", "lora-kohya.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "style.safetensors"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, ts := newTestServer(t, WithLoRADir(dir))
	code, b := get(t, ts.URL+"/sdapi/v1/loras")
	if code != 200 || !strings.Contains(string(b), `"name":"style"`) {
		t.Fatalf("loras: %d %s", code, b)
	}
	body := `{"prompt": "a apple, 4k <lora:style:0.7>", "steps": 3, "width": 64, "height": 64, "seed": 5, "sampler_name": "Euler"}`
	code, _, b = post(t, context.Background(), ts.URL+"/sdapi/v1/txt2img", body)
	if code != 200 {
		t.Fatalf("status %d: %s", code, b)
	}
	r, info := decodeTxt2img(t, b)
	img, chunk := decodePNG(t, r.Images[0])
	want, err := tinyPipeline(t).Generate(context.Background(), pipeline.Request{Prompt: "a apple, 4k ", Width: 64, Height: 64,
		Steps: 3, Seed: 5, Scheduler: "euler", PromptSyntax: pipeline.PromptSyntaxA1111,
		LoRAs: []pipeline.LoRA{{Path: filepath.Join(dir, "style.safetensors"), Scale: 0.7}}})
	if err != nil {
		t.Fatal(err)
	}
	if string(img.Pix) != string(want.Images[0].Pix) {
		t.Error("the image differs from the pipeline's with the LoRA")
	}
	if !strings.HasPrefix(chunk, "a apple, 4k  <lora:style:0.7>\n") {
		t.Errorf("parameters chunk %q", chunk)
	}
	t.Logf("info prompt %q, chunk %q", info.Prompt, strings.SplitN(chunk, "\n", 2)[0])

	for _, c := range []struct{ prompt, want string }{
		{"x <lora:nope:1>", "not found"},
		{"x <lora:../style:1>", "not a plain file name"},
		{"x <lora:style:big>", "not a number"},
	} {
		b, _ := json.Marshal(map[string]any{"prompt": c.prompt, "steps": 1, "width": 64, "height": 64})
		code, _, out := post(t, context.Background(), ts.URL+"/sdapi/v1/txt2img", string(b))
		if code != 422 || !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "prompt") {
			t.Errorf("%q: %d %s", c.prompt, code, out)
		}
	}
	_, plain := newTestServer(t)
	code, _, out := post(t, context.Background(), plain.URL+"/sdapi/v1/txt2img", `{"prompt": "x <lora:style>", "steps": 1, "width": 64, "height": 64}`)
	if code != 422 || !strings.Contains(string(out), "LoRA folder") {
		t.Errorf("no folder: %d %s", code, out)
	}
}
