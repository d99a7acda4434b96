package hub

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeRepo is one repository served by fakeHub.
type fakeRepo struct {
	id      string
	sha     string
	files   map[string][]byte
	private bool // unknown (401 RepoNotFound) without the token
	gated   bool // model info is public, files need the token
}

// fakeReq records one request the fake hub or CDN received.
type fakeReq struct {
	host   string // "hub" or "cdn"
	method string
	path   string // for resolve and CDN requests: the file's path in its repo
	kind   string // "info", "resolve", "blob"
	rng    string // Range header
	auth   string // Authorization header
}

// fakeHub imitates the Hub's endpoints (model info; resolve with ETag / X-Linked-Etag / X-Linked-Size /
// X-Repo-Commit, LFS files redirected with a 302 to a second, CDN-like server that honours Range).
type fakeHub struct {
	t        *testing.T
	hub, cdn *httptest.Server
	token    string

	mu       sync.Mutex
	repos    map[string]*fakeRepo
	reqs     []fakeReq
	cutAfter map[string]int64         // file → close the connection after N body bytes, once
	corrupt  map[string]bool          // file → serve altered bytes of the right length
	stall    map[string]chan struct{} // file → send half, signal on the channel, then hang; once
	expire   map[string]bool          // file → answer 403 as for an expired signed URL; once
	badInfo  string                   // if set, the model-info body
	noETag   bool
	noCommit bool
	renamed  map[string]string // old repo id → new one (resolve answers a relative 307)
	missing  map[string]bool   // file listed by model info but answered 404 by resolve
}

func newFakeHub(t *testing.T) *fakeHub {
	f := &fakeHub{t: t, repos: map[string]*fakeRepo{}, cutAfter: map[string]int64{}, corrupt: map[string]bool{},
		stall: map[string]chan struct{}{}, renamed: map[string]string{}, missing: map[string]bool{}, expire: map[string]bool{}, token: "hf_testtoken"}
	f.hub = httptest.NewServer(http.HandlerFunc(f.serveHub))
	f.cdn = httptest.NewServer(http.HandlerFunc(f.serveCDN))
	t.Cleanup(func() { f.hub.Close(); f.cdn.Close() })
	return f
}

func (f *fakeHub) add(r *fakeRepo) *fakeRepo {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repos[r.id] = r
	return r
}

// requests returns the requests received so far and forgets them.
func (f *fakeHub) requests() []fakeReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.reqs
	f.reqs = nil
	return r
}

func (f *fakeHub) record(r fakeReq) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.mu.Unlock()
}

func isLFS(name string) bool {
	switch path.Ext(name) {
	case ".safetensors", ".bin", ".ckpt", ".msgpack", ".png", ".onnx":
		return true
	}
	return false
}

func gitSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func hubError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Error-Code", code)
	w.Header().Set("X-Error-Message", msg)
	http.Error(w, msg, status)
}

func (f *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	auth := r.Header.Get("Authorization")
	authed := auth == "Bearer "+f.token
	if rest, ok := strings.CutPrefix(p, "api/models/"); ok {
		parts := strings.SplitN(rest, "/", 4) // org, name, "revision", rev
		f.record(fakeReq{host: "hub", method: r.Method, kind: "info", path: rest, auth: auth})
		if len(parts) != 4 || parts[2] != "revision" {
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		id := parts[0] + "/" + parts[1]
		if n := f.renamed[id]; n != "" {
			id = n
		}
		repo, bad := f.repos[id], f.badInfo
		f.mu.Unlock()
		if repo == nil || (repo.private && !authed) {
			hubError(w, 401, "RepoNotFound", "Repository not found")
			return
		}
		if parts[3] != "main" && parts[3] != repo.sha {
			hubError(w, 404, "RevisionNotFound", "Invalid rev id: "+parts[3])
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if bad != "" {
			w.Write([]byte(bad))
			return
		}
		type sib struct {
			R string `json:"rfilename"`
		}
		var sibs []sib
		for name := range repo.files {
			sibs = append(sibs, sib{name})
		}
		sort.Slice(sibs, func(i, j int) bool { return sibs[i].R < sibs[j].R })
		json.NewEncoder(w).Encode(map[string]any{"id": repo.id, "sha": repo.sha, "siblings": sibs})
		return
	}
	parts := strings.SplitN(p, "/", 5) // org, name, "resolve", rev, file
	if len(parts) != 5 || parts[2] != "resolve" {
		f.record(fakeReq{host: "hub", method: r.Method, path: p, auth: auth})
		http.NotFound(w, r)
		return
	}
	id, rev, file := parts[0]+"/"+parts[1], parts[3], parts[4]
	f.record(fakeReq{host: "hub", method: r.Method, kind: "resolve", path: file, auth: auth, rng: r.Header.Get("Range")})
	f.mu.Lock()
	repo, newID := f.repos[id], f.renamed[id]
	noETag, noCommit, hide := f.noETag, f.noCommit, f.missing[file]
	f.mu.Unlock()
	if newID != "" {
		w.Header().Set("Location", "/"+newID+"/resolve/"+rev+"/"+file)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	if repo == nil || (repo.private && !authed) {
		hubError(w, 401, "RepoNotFound", "Repository not found")
		return
	}
	if rev != "main" && rev != repo.sha {
		hubError(w, 404, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	if !noCommit {
		w.Header().Set("X-Repo-Commit", repo.sha)
	}
	if repo.gated && !authed {
		hubError(w, 401, "GatedRepo", "Access to model "+id+" is restricted. You must be authenticated to access it.")
		return
	}
	body, ok := repo.files[file]
	if !ok || hide {
		hubError(w, 404, "EntryNotFound", "Entry not found")
		return
	}
	if isLFS(file) {
		sum := sha256hex(body)
		w.Header().Set("ETag", `"`+gitSHA1([]byte("version https://git-lfs.github.com/spec/v1\noid sha256:"+sum))+`"`)
		if !noETag {
			w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		}
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(body)))
		w.Header().Set("Location", f.cdn.URL+"/blobs/"+sum+"?file="+file)
		w.WriteHeader(http.StatusFound)
		return
	}
	if !noETag {
		w.Header().Set("ETag", `"`+gitSHA1(body)+`"`)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

func (f *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	file := r.URL.Query().Get("file")
	f.record(fakeReq{host: "cdn", method: r.Method, kind: "blob", path: file, rng: r.Header.Get("Range"), auth: r.Header.Get("Authorization")})
	sum := strings.TrimPrefix(r.URL.Path, "/blobs/")
	f.mu.Lock()
	var body []byte
	for _, repo := range f.repos {
		if b, ok := repo.files[file]; ok && sha256hex(b) == sum {
			body = b
		}
	}
	cut, hasCut := f.cutAfter[file]
	delete(f.cutAfter, file)
	corrupt, stall, expire := f.corrupt[file], f.stall[file], f.expire[file]
	delete(f.stall, file)
	delete(f.expire, file)
	f.mu.Unlock()
	if expire {
		http.Error(w, "Request has expired", http.StatusForbidden)
		return
	}
	if body == nil {
		http.NotFound(w, r)
		return
	}
	if corrupt {
		body = append([]byte(nil), body...)
		body[len(body)/2] ^= 0xff
	}
	start := int64(0)
	if rg := r.Header.Get("Range"); rg != "" {
		s, ok := strings.CutPrefix(rg, "bytes=")
		s, ok2 := strings.CutSuffix(s, "-")
		n, err := strconv.ParseInt(s, 10, 64)
		if !ok || !ok2 || err != nil || n >= int64(len(body)) {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start = n
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", n, len(body)-1, len(body)))
	}
	w.Header().Set("Content-Length", strconv.FormatInt(int64(len(body))-start, 10))
	if start > 0 {
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	if r.Method == http.MethodHead {
		return
	}
	rest := body[start:]
	switch {
	case hasCut:
		w.Write(rest[:cut])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	case stall != nil:
		w.Write(rest[:len(rest)/2])
		w.(http.Flusher).Flush()
		close(stall)
		<-r.Context().Done()
	default:
		w.Write(rest)
	}
}

// tinyRepo is the tiny pipeline from testdata plus the decoys a real repo carries: a safety checker
// (named in model_index.json, as in OFA-Sys/small-stable-diffusion-v0) and feature extractor, a .ckpt,
// images, flax and onnx weights, a .bin beside a .safetensors, a README.
func tinyRepo(t *testing.T, id string) *fakeRepo {
	t.Helper()
	root := filepath.Join("..", "testdata", "tiny-sd")
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var idx map[string]any
	if err := json.Unmarshal(files["model_index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	idx["safety_checker"] = []string{"stable_diffusion", "StableDiffusionSafetyChecker"}
	idx["feature_extractor"] = []string{"transformers", "CLIPImageProcessor"}
	idx["requires_safety_checker"] = true
	files["model_index.json"], _ = json.MarshalIndent(idx, "", "  ")
	decoy := func(name string, n int) { files[name] = []byte(strings.Repeat(name+"\n", n)) }
	decoy("safety_checker/config.json", 3)
	decoy("safety_checker/model.safetensors", 500)
	decoy("safety_checker/pytorch_model.bin", 500)
	decoy("feature_extractor/preprocessor_config.json", 2)
	decoy("v1-5-pruned-emaonly.ckpt", 1000)
	decoy("sample.png", 100)
	decoy("images/grid.png", 100)
	decoy("unet/diffusion_flax_model.msgpack", 300)
	decoy("text_encoder/flax_model.msgpack", 300)
	decoy("text_encoder/model.onnx", 300)
	decoy("vae/diffusion_pytorch_model.bin", 300)
	decoy("README.md", 5)
	decoy(".gitattributes", 5)
	return &fakeRepo{id: id, sha: sha256hex([]byte(id))[:40], files: files}
}

// wantTiny is what Download must fetch from tinyRepo by default.
var wantTiny = []string{
	"model_index.json",
	"scheduler/scheduler_config.json",
	"text_encoder/config.json", "text_encoder/model.safetensors",
	"tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
	"unet/config.json", "unet/diffusion_pytorch_model.safetensors",
	"vae/config.json", "vae/diffusion_pytorch_model.safetensors",
}
