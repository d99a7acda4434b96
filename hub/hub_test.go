package hub

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// isolate clears every variable the package reads, so the machine's environment cannot leak in.
func isolate(t *testing.T) {
	t.Helper()
	for _, k := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME", "HF_ENDPOINT",
		"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE"} {
		t.Setenv(k, "")
	}
	t.Setenv("HF_HOME", t.TempDir())
}

// opts points Download at the fake hub and a fresh cache.
func (f *fakeHub) opts(cache string, more ...Option) []Option {
	return append([]Option{WithEndpoint(f.hub.URL), WithCacheDir(cache)}, more...)
}

// snapshotFiles lists the files (following symlinks) under a snapshot folder.
func snapshotFiles(t *testing.T, dir string) []string {
	t.Helper()
	var got []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if !isFile(p) {
			t.Errorf("%s is not a readable file", p)
		}
		rel, _ := filepath.Rel(dir, p)
		got = append(got, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	return got
}

func checkFiles(t *testing.T, dir string, repo *fakeRepo, want []string) {
	t.Helper()
	want = append([]string(nil), want...)
	sort.Strings(want)
	got := snapshotFiles(t, dir)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("snapshot holds\n  %v\nwant\n  %v", got, want)
	}
	for _, f := range want {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, repo.files[f]) {
			t.Errorf("%s: %d bytes differ from the %d served", f, len(b), len(repo.files[f]))
		}
	}
}

type reqCount struct{ info, head, hubGet, cdnGet, other int }

func count(reqs []fakeReq) reqCount {
	var c reqCount
	for _, r := range reqs {
		switch {
		case r.kind == "info":
			c.info++
		case r.kind == "resolve" && r.method == "HEAD":
			c.head++
		case r.kind == "resolve" && r.method == "GET":
			c.hubGet++
		case r.kind == "blob" && r.method == "GET":
			c.cdnGet++
		default:
			c.other++
		}
	}
	return c
}

func TestFreshDownload(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	cache := t.TempDir()
	var last = map[string]Progress{}
	dir, err := Download(context.Background(), "org/tiny", f.opts(cache, WithProgress(func(p Progress) {
		if prev, ok := last[p.File]; ok && p.Done < prev.Done {
			t.Errorf("%s: progress went back from %d to %d", p.File, prev.Done, p.Done)
		}
		last[p.File] = p
	}))...)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "models--org--tiny", "snapshots", repo.sha); dir != want {
		t.Errorf("dir = %s, want %s", dir, want)
	}
	checkFiles(t, dir, repo, wantTiny)

	reqs := f.requests()
	lfs := 0
	for _, r := range reqs {
		found := false
		for _, w := range wantTiny {
			found = found || r.path == w
		}
		if r.kind != "info" && !found {
			t.Errorf("request for a file the pipeline does not need: %+v", r)
		}
	}
	for _, w := range wantTiny {
		if isLFS(w) {
			lfs++
		}
	}
	c := count(reqs)
	t.Logf("fresh download of %d files (%d LFS): %d requests: %+v", len(wantTiny), lfs, len(reqs), c)
	if want := (reqCount{info: 1, head: len(wantTiny), hubGet: len(wantTiny) - lfs, cdnGet: lfs}); c != want {
		t.Errorf("requests %+v, want %+v", c, want)
	}
	for _, w := range wantTiny {
		p, ok := last[w]
		if !ok || p.Done != int64(len(repo.files[w])) || p.Total != p.Done {
			t.Errorf("%s: last progress %+v, want Done = Total = %d", w, p, len(repo.files[w]))
		}
	}
	u := last["vae/diffusion_pytorch_model.safetensors"]
	if u.Count != len(wantTiny)-1 || u.AllTotal <= u.Total || u.Rate <= 0 {
		t.Errorf("unexpected overall progress %+v", u)
	}
}

// TestCacheLayout checks the cache is laid out exactly as huggingface_hub lays it out.
func TestCacheLayout(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	cache := t.TempDir()
	if _, err := Download(context.Background(), "org/tiny", f.opts(cache)...); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(cache, "models--org--tiny")
	ref, err := os.ReadFile(filepath.Join(root, "refs", "main"))
	if err != nil || string(ref) != repo.sha {
		t.Errorf("refs/main = %q, %v; want %q without newline", ref, err, repo.sha)
	}
	wantBlobs := map[string]bool{}
	for _, file := range wantTiny {
		etag := gitSHA1(repo.files[file])
		if isLFS(file) {
			etag = sha256hex(repo.files[file])
		}
		wantBlobs[etag] = true
		ptr := filepath.Join(root, "snapshots", repo.sha, filepath.FromSlash(file))
		target, err := os.Readlink(ptr)
		if err != nil {
			t.Errorf("%s: not a symlink: %v", file, err)
			continue
		}
		want := strings.Repeat("../", strings.Count(file, "/")) + "../../blobs/" + etag
		if target != filepath.FromSlash(want) {
			t.Errorf("%s -> %s, want %s", file, target, want)
		}
		if b, err := os.ReadFile(filepath.Join(root, "blobs", etag)); err != nil || !bytes.Equal(b, repo.files[file]) {
			t.Errorf("blob %s of %s wrong: %v", etag, file, err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(root, "blobs"))
	for _, e := range ents {
		if !wantBlobs[e.Name()] {
			t.Errorf("unexpected entry blobs/%s", e.Name())
		}
	}
	if len(ents) != len(wantBlobs) {
		t.Errorf("%d blobs, want %d", len(ents), len(wantBlobs))
	}
	top, _ := os.ReadDir(root)
	var names []string
	for _, e := range top {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "blobs refs snapshots" {
		t.Errorf("repo folder holds %v, want blobs refs snapshots", names)
	}
	if _, err := os.Stat(filepath.Join(cache, ".locks", "models--org--tiny")); err != nil {
		t.Errorf("no lock folder as huggingface_hub >= 0.17 uses: %v", err)
	}
}

// TestPythonCache: a cache laid out by hand as huggingface_hub writes it is used as is.
func TestPythonCache(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	root := filepath.Join(cache, "models--org--tiny")
	for _, file := range append(wantTiny, "safety_checker/pytorch_model.bin", "README.md") {
		etag := gitSHA1(repo.files[file])
		if isLFS(file) {
			etag = sha256hex(repo.files[file])
		}
		must(t, os.MkdirAll(filepath.Join(root, "blobs"), 0o755))
		must(t, os.WriteFile(filepath.Join(root, "blobs", etag), repo.files[file], 0o644))
		ptr := filepath.Join(root, "snapshots", repo.sha, filepath.FromSlash(file))
		must(t, os.MkdirAll(filepath.Dir(ptr), 0o755))
		rel, _ := filepath.Rel(filepath.Dir(ptr), filepath.Join(root, "blobs", etag))
		must(t, os.Symlink(rel, ptr))
	}
	must(t, os.MkdirAll(filepath.Join(root, "refs"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "refs", "main"), []byte(repo.sha), 0o644))

	t.Setenv("HF_HUB_OFFLINE", "1")
	dir, err := Download(context.Background(), "org/tiny", WithEndpoint(f.hub.URL))
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(root, "snapshots", repo.sha) {
		t.Errorf("dir = %s", dir)
	}
	if r := f.requests(); len(r) != 0 {
		t.Errorf("offline: %d requests", len(r))
	}
	if _, err := Download(context.Background(), "org/tiny", WithEndpoint(f.hub.URL), WithOffline(false)); err != nil {
		t.Fatal(err)
	}
	if c := count(f.requests()); c != (reqCount{info: 1}) {
		t.Errorf("online with a complete Python cache: %+v, want only the model-info call", c)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSecondCall: nothing is asked when the revision is a commit hash, only model info for a branch.
func TestSecondCall(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	cache := t.TempDir()
	first, err := Download(context.Background(), "org/tiny", f.opts(cache)...)
	if err != nil {
		t.Fatal(err)
	}
	f.requests()
	dir, err := Download(context.Background(), "org/tiny", f.opts(cache, WithRevision(repo.sha))...)
	if err != nil || dir != first {
		t.Fatalf("commit hash: %s, %v", dir, err)
	}
	if r := f.requests(); len(r) != 0 {
		t.Errorf("revision = commit hash, cached: %d requests %+v, want none", len(r), r)
	}
	dir, err = Download(context.Background(), "org/tiny", f.opts(cache)...)
	if err != nil || dir != first {
		t.Fatalf("main: %s, %v", dir, err)
	}
	c := count(f.requests())
	t.Logf("second call: commit hash 0 requests; branch %+v", c)
	if c != (reqCount{info: 1}) {
		t.Errorf("revision = main, cached: %+v, want only the model-info call", c)
	}
	// A snapshot that lacks a pointer whose blob is cached: the Hub is asked, the blob relinked.
	must(t, os.Remove(filepath.Join(first, "vae", "config.json")))
	if _, err := Download(context.Background(), "org/tiny", f.opts(cache, WithRevision(repo.sha))...); err != nil {
		t.Fatal(err)
	}
	if c := count(f.requests()); c != (reqCount{info: 1, head: 1}) {
		t.Errorf("one missing pointer: %+v, want info + HEAD", c)
	}
	// A lost blob is fetched again, alone.
	must(t, os.Remove(filepath.Join(first, "vae", "config.json")))
	must(t, os.Remove(filepath.Join(cache, "models--org--tiny", "blobs", gitSHA1(repo.files["vae/config.json"]))))
	if _, err := Download(context.Background(), "org/tiny", f.opts(cache, WithRevision(repo.sha))...); err != nil {
		t.Fatal(err)
	}
	if c := count(f.requests()); c != (reqCount{info: 1, head: 1, hubGet: 1}) {
		t.Errorf("one missing file: %+v, want info + HEAD + GET", c)
	}
	checkFiles(t, first, repo, wantTiny)
}

func TestOffline(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	f.add(tinyRepo(t, "org/other"))
	cache := t.TempDir()
	t.Setenv("HF_HUB_OFFLINE", "1")
	// The option overrides the environment.
	first, err := Download(context.Background(), "org/tiny", f.opts(cache, WithOffline(false))...)
	if err != nil {
		t.Fatal(err)
	}
	f.requests()
	for _, rev := range []string{"main", repo.sha} {
		dir, err := Download(context.Background(), "org/tiny", f.opts(cache, WithRevision(rev))...)
		if err != nil || dir != first {
			t.Errorf("offline %s: %s, %v", rev, dir, err)
		}
	}
	if r := f.requests(); len(r) != 0 {
		t.Errorf("offline: %d requests", len(r))
	}
	_, err = Download(context.Background(), "org/other", f.opts(cache)...)
	t.Logf("not cached: %v", err)
	if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "org/other") || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
		t.Errorf("uncached repo offline: %v", err)
	}
	must(t, os.Remove(filepath.Join(first, "unet", "diffusion_pytorch_model.safetensors")))
	_, err = Download(context.Background(), "org/tiny", f.opts(cache)...)
	t.Logf("incomplete: %v", err)
	if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "unet/(weights") {
		t.Errorf("incomplete snapshot offline: %v", err)
	}
	if r := f.requests(); len(r) != 0 {
		t.Errorf("offline: %d requests", len(r))
	}
}

func TestVariant(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	cache := t.TempDir()
	dir, err := Download(context.Background(), "org/tiny", f.opts(cache, WithVariant("fp16"))...)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string(nil), wantTiny...)
	for i, w := range want {
		if w == "text_encoder/model.safetensors" {
			want[i] = "text_encoder/model.fp16.safetensors"
		}
	}
	checkFiles(t, dir, repo, want)
	for _, w := range []string{"unet/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors"} {
		if !isFile(filepath.Join(cache, "models--org--tiny", ".no_exist", repo.sha, w)) {
			t.Errorf("no .no_exist marker for %s", w)
		}
	}
	f.requests()
	if _, err := Download(context.Background(), "org/tiny", f.opts(cache, WithVariant("fp16"), WithRevision(repo.sha))...); err != nil {
		t.Fatal(err)
	}
	if r := f.requests(); len(r) != 0 {
		t.Errorf("fp16 by commit hash, cached: %d requests", len(r))
	}
	// The default weights are not in the cache yet: the text encoder's are fetched.
	if _, err := Download(context.Background(), "org/tiny", f.opts(cache, WithRevision(repo.sha))...); err != nil {
		t.Fatal(err)
	}
	if c := count(f.requests()); c != (reqCount{info: 1, head: 1, cdnGet: 1}) {
		t.Errorf("default weights after fp16: %+v", c)
	}
}

func TestSafetyChecker(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	dir, err := Download(context.Background(), "org/tiny", f.opts(t.TempDir(), WithSafetyChecker(true))...)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, repo, append(wantTiny, "feature_extractor/preprocessor_config.json",
		"safety_checker/config.json", "safety_checker/model.safetensors"))
}

// TestBinOnly: a component without .safetensors gets its .bin.
func TestBinOnly(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := tinyRepo(t, "org/bin")
	repo.files["unet/diffusion_pytorch_model.bin"] = repo.files[unetFile]
	delete(repo.files, unetFile)
	f.add(repo)
	dir, err := Download(context.Background(), "org/bin", f.opts(t.TempDir())...)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string(nil), wantTiny...)
	for i, w := range want {
		if w == unetFile {
			want[i] = "unet/diffusion_pytorch_model.bin"
		}
	}
	checkFiles(t, dir, repo, want)
}

// TestRenamedRepo: the metadata request follows the Hub's relative redirect of a renamed repo.
func TestRenamedRepo(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	f.renamed["org/old"] = "org/tiny"
	cache := t.TempDir()
	dir, err := Download(context.Background(), "org/old", f.opts(cache)...)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, repo, wantTiny)
	if !strings.HasPrefix(dir, filepath.Join(cache, "models--org--old")) {
		t.Errorf("dir %s", dir)
	}
}

// TestStall: a transfer that stops sending is abandoned after the idle timeout and resumed.
// TestExpiredURL: a CDN URL refused as expired is asked for again and the download goes on.
// TestUnreachable: when the Hub cannot be reached, a complete cached snapshot is used, as
// huggingface_hub does; an incomplete one gives an error that says so.
