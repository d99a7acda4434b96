package hub

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// taesdRepo is a single-model repo laid out as madebyollin/taesd: config.json and the diffusers
// weights at the top level, plus files the model does not need.
func taesdRepo(t *testing.T, id string) *fakeRepo {
	t.Helper()
	files := map[string][]byte{}
	for _, n := range []string{"config.json", "diffusion_pytorch_model.safetensors"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "taesd-tiny", n))
		if err != nil {
			t.Fatal(err)
		}
		files[n] = b
	}
	files["diffusion_pytorch_model.bin"] = []byte("decoy bin weights")
	files["taesd_decoder.pth"] = []byte("decoy")
	files["images/preview.png"] = []byte("decoy")
	files["README.md"] = []byte("# taesd")
	return &fakeRepo{id: id, sha: sha256hex([]byte(id))[:40], files: files}
}

func TestSingleModelRepo(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(taesdRepo(t, "org/taesd"))
	cache := t.TempDir()
	dir, err := Download(context.Background(), "org/taesd", f.opts(cache)...)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"config.json", "diffusion_pytorch_model.safetensors"}
	checkFiles(t, dir, repo, want)
	for _, r := range f.requests() {
		if r.kind != "info" && r.path != want[0] && r.path != want[1] {
			t.Errorf("request for a file the model does not need: %+v", r)
		}
	}
	// Offline, the cached snapshot is complete; without its weights it is not.
	t.Setenv("HF_HUB_OFFLINE", "1")
	if again, err := Download(context.Background(), "org/taesd", f.opts(cache)...); err != nil || again != dir {
		t.Errorf("offline: %s, %v", again, err)
	}
	if r := f.requests(); len(r) != 0 {
		t.Errorf("offline: %d requests", len(r))
	}
	must(t, os.Remove(filepath.Join(dir, "diffusion_pytorch_model.safetensors")))
	if _, err := Download(context.Background(), "org/taesd", f.opts(cache)...); err == nil {
		t.Error("offline with the weights removed: no error")
	} else {
		t.Logf("incomplete: %v", err)
	}
}

func TestNotAModelRepo(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	f.add(&fakeRepo{id: "org/readme", sha: sha256hex([]byte("org/readme"))[:40], files: map[string][]byte{"README.md": []byte("hi")}})
	_, err := Download(context.Background(), "org/readme", f.opts(t.TempDir())...)
	if err == nil {
		t.Fatal("a repo with neither model_index.json nor config.json: no error")
	}
	t.Logf("%v", err)
}
