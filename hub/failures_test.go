package hub

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const unetFile = "unet/diffusion_pytorch_model.safetensors"

func TestResumeWithinCall(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	f.cutAfter[unetFile] = 1 << 20
	dir, err := Download(context.Background(), "org/tiny", f.opts(t.TempDir())...)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, repo, wantTiny)
	var ranges []string
	for _, r := range f.requests() {
		if r.kind == "blob" && r.path == unetFile {
			ranges = append(ranges, r.rng)
		}
	}
	t.Logf("CDN requests for %s: Range %q", unetFile, ranges)
	if len(ranges) != 2 || ranges[0] != "" || ranges[1] != "bytes=1048576-" {
		t.Errorf("ranges %q, want [\"\" \"bytes=1048576-\"]", ranges)
	}
}

func TestResumeAcrossCalls(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	cache := t.TempDir()
	f.cutAfter[unetFile] = 1 << 20
	_, err := Download(context.Background(), "org/tiny", f.opts(cache, WithRetries(0))...)
	t.Logf("cut: %v", err)
	if err == nil || !strings.Contains(err.Error(), unetFile) || errors.Is(err, ErrIntegrity) {
		t.Fatalf("cut connection: %v", err)
	}
	blob := filepath.Join(cache, "models--org--tiny", "blobs", sha256hex(repo.files[unetFile]))
	if st, err := os.Stat(blob + ".incomplete"); err != nil || st.Size() != 1<<20 {
		t.Errorf("partial file: %v %v", st, err)
	}
	if _, err := os.Stat(blob); err == nil {
		t.Error("a cut download left a complete-looking blob")
	}
	f.requests()
	dir, err := Download(context.Background(), "org/tiny", f.opts(cache, WithRetries(0))...)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, repo, wantTiny)
	for _, r := range f.requests() {
		if r.kind == "blob" && r.path == unetFile && r.rng != "bytes=1048576-" {
			t.Errorf("resumed request sent Range %q", r.rng)
		}
	}
}

func TestCorruptBlob(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	cache := t.TempDir()
	f.corrupt[unetFile] = true
	_, err := Download(context.Background(), "org/tiny", f.opts(cache)...)
	t.Logf("corrupt: %v", err)
	if !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), unetFile) || !strings.Contains(err.Error(), "org/tiny") {
		t.Fatalf("corrupt blob: %v", err)
	}
	root := filepath.Join(cache, "models--org--tiny")
	blob := filepath.Join(root, "blobs", sha256hex(repo.files[unetFile]))
	for _, p := range []string{blob, blob + ".incomplete", filepath.Join(root, "snapshots", repo.sha, "unet", "diffusion_pytorch_model.safetensors")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists after a checksum failure", p)
		}
	}
	f.corrupt[unetFile] = false
	dir, err := Download(context.Background(), "org/tiny", f.opts(cache)...)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, repo, wantTiny)
}

func TestHTTPErrors(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	f.add(tinyRepo(t, "org/tiny"))
	g := tinyRepo(t, "org/gated")
	g.gated = true
	f.add(g)
	cases := []struct {
		name, repo string
		opts       []Option
		setup      func()
		is         []error
		say        []string
	}{
		{"unknown repo", "org/nope", nil, nil, []error{ErrNotFound, ErrAccess}, []string{"org/nope", "401", "RepoNotFound", "HF_TOKEN", "org/name"}},
		{"unknown revision", "org/tiny", []Option{WithRevision("v9")}, nil, []error{ErrNotFound}, []string{"org/tiny", "404", `"v9"`, "branch, tag or commit"}},
		{"gated", "org/gated", nil, nil, []error{ErrAccess}, []string{"org/gated", "model_index.json", "401", "HF_TOKEN", "licence"}},
		{"gated, bad token", "org/gated", []Option{WithToken("hf_wrong")}, nil, []error{ErrAccess}, []string{"org/gated", "401", "token was refused"}},
		{"missing file", "org/tiny", nil, func() { f.missing["vae/config.json"] = true }, []error{ErrNotFound}, []string{"org/tiny", "vae/config.json", "404", "EntryNotFound"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
			}
			_, err := Download(context.Background(), c.repo, f.opts(t.TempDir(), c.opts...)...)
			t.Logf("%v", err)
			if err == nil {
				t.Fatal("no error")
			}
			for _, e := range c.is {
				if !errors.Is(err, e) {
					t.Errorf("not %v", e)
				}
			}
			for _, s := range c.say {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not say %q", s)
				}
			}
		})
	}
}

func TestToken(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	p := tinyRepo(t, "org/private")
	p.private = true
	f.add(p)
	t.Setenv("HF_TOKEN", f.token)
	dir, err := Download(context.Background(), "org/private", f.opts(t.TempDir())...)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, p, wantTiny)
	for _, r := range f.requests() {
		if r.host == "hub" && r.auth != "Bearer "+f.token {
			t.Errorf("hub request without the token: %+v", r)
		}
		if r.host == "cdn" && r.auth != "" {
			t.Errorf("token sent to the CDN: %+v", r)
		}
	}
	// The option overrides the environment.
	if _, err := Download(context.Background(), "org/private", f.opts(t.TempDir(), WithToken(""))...); !errors.Is(err, ErrAccess) {
		t.Errorf("WithToken(\"\"): %v", err)
	}
	// The token file of `huggingface-cli login` is read when HF_TOKEN is unset.
	t.Setenv("HF_TOKEN", "")
	must(t, os.WriteFile(filepath.Join(os.Getenv("HF_HOME"), "token"), []byte(f.token+"\n"), 0o600))
	if _, err := Download(context.Background(), "org/private", f.opts(t.TempDir())...); err != nil {
		t.Errorf("token file: %v", err)
	}
}

func TestBadResponses(t *testing.T) {
	isolate(t)
	cases := []struct {
		name  string
		setup func(f *fakeHub)
		say   string
	}{
		{"bad JSON", func(f *fakeHub) { f.badInfo = "{not json" }, "not valid JSON"},
		{"no sha", func(f *fakeHub) { f.badInfo = `{"sha": "abc", "siblings": []}` }, "no commit hash"},
		{"not a pipeline", func(f *fakeHub) {
			f.badInfo = `{"sha": "` + strings.Repeat("a", 40) + `", "siblings": [{"rfilename": "x"}]}`
		}, "no model_index.json"},
		{"no etag", func(f *fakeHub) { f.noETag = true }, "ETag"},
		{"no commit header", func(f *fakeHub) { f.noCommit = true }, "X-Repo-Commit"},
		{"short body", func(f *fakeHub) { f.cutAfter[unetFile] = 1000 }, "unexpected EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeHub(t)
			f.add(tinyRepo(t, "org/tiny"))
			c.setup(f)
			_, err := Download(context.Background(), "org/tiny", f.opts(t.TempDir(), WithRetries(0))...)
			t.Logf("%v", err)
			if err == nil || !strings.Contains(err.Error(), c.say) || !strings.Contains(err.Error(), "org/tiny") {
				t.Errorf("got %v, want an error saying %q", err, c.say)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	cache := t.TempDir()
	ch := make(chan struct{})
	f.stall[unetFile] = ch
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-ch; cancel() }()
	_, err := Download(ctx, "org/tiny", f.opts(cache)...)
	t.Logf("cancelled: %v", err)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), unetFile) {
		t.Fatalf("got %v, want context.Canceled naming the file", err)
	}
	blob := filepath.Join(cache, "models--org--tiny", "blobs", sha256hex(repo.files[unetFile]))
	if _, err := os.Stat(blob); err == nil {
		t.Error("a cancelled download left a complete-looking blob")
	}
	if _, err := Download(ctx, "org/tiny", f.opts(cache)...); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context before start: %v", err)
	}
	dir, err := Download(context.Background(), "org/tiny", f.opts(cache)...)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, repo, wantTiny)
}

func TestConcurrent(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	cache := t.TempDir()
	var wg sync.WaitGroup
	dirs, errs := make([]string, 3), make([]error, 3)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = Download(context.Background(), "org/tiny", f.opts(cache)...)
		}()
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		checkFiles(t, dirs[i], repo, wantTiny)
	}
	gets := map[string]int{}
	for _, r := range f.requests() {
		if r.method == "GET" && r.kind != "info" {
			gets[r.path]++
		}
	}
	for _, w := range wantTiny {
		if gets[w] != 1 {
			t.Errorf("%s fetched %d times by 3 concurrent calls, want once", w, gets[w])
		}
	}
}

func TestBadOptions(t *testing.T) {
	isolate(t)
	for _, c := range []struct {
		repo string
		opts []Option
		say  string
	}{
		{"not-a-repo", nil, "org/name"},
		{"org/x", []Option{WithRevision("../../etc")}, "revision"},
		{"org/x", []Option{WithVariant("fp16/../x")}, "variant"},
		{"org/x", []Option{WithEndpoint("ftp://x")}, "endpoint"},
	} {
		_, err := Download(context.Background(), c.repo, c.opts...)
		if err == nil || !strings.Contains(err.Error(), c.say) {
			t.Errorf("%s %v: %v, want an error about %s", c.repo, c.opts, err, c.say)
		}
	}
}

func TestStall(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	f.stall[unetFile] = make(chan struct{})
	fast := func(c *config) { c.idle = 300 * time.Millisecond }
	dir, err := Download(context.Background(), "org/tiny", f.opts(t.TempDir(), fast)...)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, repo, wantTiny)
	var ranges []string
	for _, r := range f.requests() {
		if r.kind == "blob" && r.path == unetFile {
			ranges = append(ranges, r.rng)
		}
	}
	half := len(repo.files[unetFile]) / 2
	if len(ranges) != 2 || ranges[1] != "bytes="+strconv.Itoa(half)+"-" {
		t.Errorf("ranges %q, want a resume from byte %d", ranges, half)
	}
}

func TestExpiredURL(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	f.expire[unetFile] = true
	dir, err := Download(context.Background(), "org/tiny", f.opts(t.TempDir())...)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, repo, wantTiny)
	heads, gets := 0, 0
	for _, r := range f.requests() {
		if r.path == unetFile && r.method == "HEAD" {
			heads++
		}
		if r.path == unetFile && r.kind == "blob" {
			gets++
		}
	}
	if heads != 2 || gets != 2 {
		t.Errorf("%d HEAD and %d CDN GET for the expired file, want 2 and 2", heads, gets)
	}
}

func TestUnreachable(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	f.add(tinyRepo(t, "org/tiny"))
	cache := t.TempDir()
	first, err := Download(context.Background(), "org/tiny", f.opts(cache)...)
	if err != nil {
		t.Fatal(err)
	}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	defer down.Close()
	for _, ep := range []string{down.URL, closed.URL} {
		dir, err := Download(context.Background(), "org/tiny", WithCacheDir(cache), WithEndpoint(ep))
		if err != nil || dir != first {
			t.Errorf("%s: %s, %v; want the cached snapshot", ep, dir, err)
		}
	}
	_, err = Download(context.Background(), "org/tiny", WithCacheDir(t.TempDir()), WithEndpoint(closed.URL))
	t.Logf("unreachable, not cached: %v", err)
	if err == nil || !strings.Contains(err.Error(), "network") {
		t.Errorf("unreachable, not cached: %v", err)
	}
}

// TestCompleteIncomplete: a download killed after its last byte but before the rename is finished
// without a transfer, once its SHA-256 checks out.
func TestCompleteIncomplete(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	cache := t.TempDir()
	blobs := filepath.Join(cache, "models--org--tiny", "blobs")
	must(t, os.MkdirAll(blobs, 0o755))
	must(t, os.WriteFile(filepath.Join(blobs, sha256hex(repo.files[unetFile])+".incomplete"), repo.files[unetFile], 0o644))
	dir, err := Download(context.Background(), "org/tiny", f.opts(cache)...)
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, repo, wantTiny)
	for _, r := range f.requests() {
		if r.kind == "blob" && r.path == unetFile {
			t.Errorf("complete partial file fetched again: %+v", r)
		}
	}
}

// TestLockHeld: while another process (here: the test, through the same flock huggingface_hub takes)
// holds a blob's lock, Download waits; when that process has written the blob, it is linked, not fetched.
func TestLockHeld(t *testing.T) {
	isolate(t)
	f := newFakeHub(t)
	repo := f.add(tinyRepo(t, "org/tiny"))
	cache := t.TempDir()
	etag := sha256hex(repo.files[unetFile])
	lockPath := filepath.Join(cache, ".locks", "models--org--tiny", etag+".lock")
	must(t, os.MkdirAll(filepath.Dir(lockPath), 0o755))
	unlock, err := lockFile(context.Background(), lockPath)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var dir string
	go func() {
		var err error
		dir, err = Download(context.Background(), "org/tiny", f.opts(cache)...)
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Download finished while the lock was held: %v", err)
	default:
	}
	blob := filepath.Join(cache, "models--org--tiny", "blobs", etag)
	must(t, os.WriteFile(blob, repo.files[unetFile], 0o644))
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, repo, wantTiny)
	for _, r := range f.requests() {
		if r.kind == "blob" && r.path == unetFile {
			t.Errorf("blob written by the lock holder was fetched again: %+v", r)
		}
	}
}
