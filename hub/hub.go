// Package hub fetches Stable Diffusion pipelines from the Hugging Face Hub into the cache that Python's
// huggingface_hub and diffusers use, so weights downloaded by either are reused by the other.
//
// Download turns a repo id such as "OFA-Sys/small-stable-diffusion-v0" into a local model folder in
// diffusers layout, fetching only what a text-to-image pipeline needs: model_index.json, each
// component's config, the tokenizer files and one set of weights per model component (.safetensors if
// the repo has them, else .bin; the requested variant such as "fp16" where it exists). The safety
// checker and feature extractor, sample images and flax, onnx and .ckpt files are left on the Hub.
//
// The cache layout is huggingface_hub's: under CacheDir(),
//
//	models--{org}--{name}/blobs/{etag}                   file contents, named by git SHA-1 or LFS SHA-256
//	models--{org}--{name}/snapshots/{commit}/{path}      relative symlinks to ../../blobs/{etag}
//	models--{org}--{name}/refs/{revision}                the commit a branch or tag pointed to
//	.locks/models--{org}--{name}/{etag}.lock             cross-process lock while a blob is written
//
// # Requests
//
// A first download asks for the repo's model info (the commit and its file list), then per file it
// needs a metadata HEAD request on {endpoint}/{repo}/resolve/{commit}/{path} (not following the Hub's
// redirect of large files to its CDN, so the X-Linked-Etag and X-Linked-Size headers can be read) and
// one GET of the file (from the CDN for large files). Blobs already in the cache (shared with other
// snapshots) are linked, not fetched again. Large files are written to blobs/{etag}.incomplete, resumed
// with a Range request after an interruption (within a call, up to WithRetries times, and across calls),
// checked against their SHA-256 and size, and only then renamed to their final name.
//
// Later calls behave as huggingface_hub's hf_hub_download does: with a commit hash as revision a
// complete cached snapshot is returned without any request; with a branch or tag one model-info
// request resolves it to a commit (and refreshes refs/{revision}), and nothing else is fetched if that
// snapshot is complete. In offline mode (HF_HUB_OFFLINE=1 or WithOffline) nothing is requested: the
// revision is resolved through refs/ and the snapshot must be complete, else the error says what is
// missing.
//
// # Environment
//
// Read when Download's options are resolved; options override it: HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE,
// HF_HOME, XDG_CACHE_HOME (see CacheDir), HF_ENDPOINT, HF_TOKEN (else HUGGING_FACE_HUB_TOKEN, else the
// token file of `huggingface-cli login`), HF_HUB_OFFLINE.
package hub

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Progress reports a file download. It is passed by value to the WithProgress callback, from the
// goroutine that called Download, at the start of each file, at most every 100 ms while it runs, and
// once when it is complete.
type Progress struct {
	Repo string // repo id
	File string // path in the repo, e.g. "unet/diffusion_pytorch_model.safetensors"
	// Index is the 1-based number of this file among the Count files of the current batch: a first
	// download fetches model_index.json alone (it says which files come next), then the others.
	Index, Count int
	Done         int64 // bytes of this file on disk, including bytes from an earlier, resumed attempt
	Total        int64 // size of this file, -1 if the server did not say
	// AllDone and AllTotal count the same over all the files of the batch (AllTotal counts unknown
	// sizes as 0).
	AllDone, AllTotal int64
	Rate              float64       // bytes per second received for this file in this call
	Remaining         time.Duration // estimated time left for this file, 0 if unknown
}

// Option configures Download.
type Option func(*config)

type config struct {
	revision string
	cacheDir string
	endpoint string
	token    string
	offline  bool
	client   *http.Client
	progress func(Progress)
	variant  string
	safety   bool
	retries  int
	idle     time.Duration // a transfer receiving nothing for this long is abandoned and resumed

	configsOnly bool // WithConfigsOnly
}

// WithRevision selects a branch, tag or commit hash (default "main").
func WithRevision(rev string) Option { return func(c *config) { c.revision = rev } }

// WithCacheDir sets the cache folder (default CacheDir()).
func WithCacheDir(dir string) Option { return func(c *config) { c.cacheDir = dir } }

// WithEndpoint sets the Hub's address (default $HF_ENDPOINT, else https://huggingface.co).
func WithEndpoint(u string) Option {
	return func(c *config) { c.endpoint = strings.TrimRight(u, "/") }
}

// WithToken sets the access token sent as "Authorization: Bearer" to the Hub (not to its CDN); the
// empty string sends none. Default: $HF_TOKEN, see the package documentation.
func WithToken(tok string) Option { return func(c *config) { c.token = strings.TrimSpace(tok) } }

// WithOffline forbids (true) or allows (false) network access, overriding $HF_HUB_OFFLINE.
func WithOffline(off bool) Option { return func(c *config) { c.offline = off } }

// WithHTTPClient sets the HTTP client (default: a new http.Client with no timeout; cancel through the
// context). Its redirect policy is used for file downloads; metadata requests never follow redirects
// to another host.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.client = hc } }

// WithProgress sets a callback that receives download progress.
func WithProgress(f func(Progress)) Option { return func(c *config) { c.progress = f } }

// WithVariant asks for a weights variant such as "fp16": "model.fp16.safetensors" is fetched instead of
// "model.safetensors" in each component that has it; components without it get their default weights.
func WithVariant(v string) Option { return func(c *config) { c.variant = v } }

// WithSafetyChecker also fetches the safety_checker and feature_extractor components (default false).
func WithSafetyChecker(on bool) Option { return func(c *config) { c.safety = on } }

// WithConfigsOnly fetches a pipeline's configs, tokenizer and scheduler config but no weights
// (pipeline.WithConfigFrom uses it for a single-file checkpoint's configs).
func WithConfigsOnly() Option { return func(c *config) { c.configsOnly = true } }

// WithRetries sets how many times an interrupted transfer is resumed within one call (default 5).
func WithRetries(n int) Option { return func(c *config) { c.retries = n } }

var variantRE = regexp.MustCompile(`^[0-9A-Za-z_]+$`)

// resolveConfig reads the environment, then applies the options over it.
func resolveConfig(opts []Option) (*config, error) {
	c := &config{revision: "main", cacheDir: CacheDir(), endpoint: envEndpoint(), token: envToken(),
		offline: envTrue("HF_HUB_OFFLINE"), retries: 5, idle: time.Minute}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if !validRevision(c.revision) {
		return nil, fmt.Errorf("hub: revision %q is not a branch, tag or commit hash", c.revision)
	}
	if c.variant != "" && !variantRE.MatchString(c.variant) {
		return nil, fmt.Errorf("hub: variant %q: want letters, digits or '_' (e.g. \"fp16\")", c.variant)
	}
	if c.cacheDir == "" {
		return nil, fmt.Errorf("hub: empty cache folder")
	}
	abs, err := filepath.Abs(c.cacheDir)
	if err != nil {
		return nil, fmt.Errorf("hub: cache folder %q: %w", c.cacheDir, err)
	}
	c.cacheDir = abs
	if u, err := url.Parse(c.endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("hub: endpoint %q is not an http(s) URL (check HF_ENDPOINT)", c.endpoint)
	}
	if c.client == nil {
		c.client = &http.Client{}
	}
	if c.retries < 0 {
		c.retries = 0
	}
	return c, nil
}

// downloader holds one Download call's state.
type downloader struct {
	cfg     *config
	repo    string
	repoDir string // cacheDir/models--org--name
}

// Download makes sure the files a Stable Diffusion pipeline needs from repo (e.g.
// "OFA-Sys/small-stable-diffusion-v0") are in the local cache and returns the snapshot folder, a
// diffusers-layout model folder. A repo of one model without model_index.json (config.json and
// its weights at the top, e.g. "madebyollin/taesd") gives that model's folder. See the package documentation for what is fetched, what is requested
// on later calls, and the environment it reads. Cancelling ctx stops a transfer (its partial file is
// kept for a later resume) and returns an error wrapping ctx.Err().
func Download(ctx context.Context, repo string, opts ...Option) (string, error) {
	if !validRepoID(repo) {
		return "", fmt.Errorf("hub: %q is not a repo id of the form org/name", repo)
	}
	cfg, err := resolveConfig(opts)
	if err != nil {
		return "", err
	}
	d := &downloader{cfg: cfg, repo: repo, repoDir: filepath.Join(cfg.cacheDir, repoFolder(repo))}
	if err := ctx.Err(); err != nil {
		return "", d.ctxError(err, "")
	}
	return d.run(ctx)
}

func (d *downloader) snapshot(commit string) string {
	return filepath.Join(d.repoDir, "snapshots", commit)
}

func (d *downloader) noExistDir(commit string) string {
	return filepath.Join(d.repoDir, ".no_exist", commit)
}

func (d *downloader) ctxError(err error, file string) error {
	return &Error{Repo: d.repo, Revision: d.cfg.revision, File: file, Msg: "download stopped", Err: err}
}

func (d *downloader) run(ctx context.Context) (string, error) {
	rev := d.cfg.revision
	if isCommit(rev) || d.cfg.offline {
		commit := d.cachedCommit(rev)
		var missing []string
		if commit != "" {
			snap := d.snapshot(commit)
			missing = d.dropWeights(localMissing(snap, d.noExistDir(commit), d.cfg.variant, d.cfg.safety))
			if len(missing) == 0 {
				return snap, nil
			}
		}
		if d.cfg.offline {
			e := &Error{Repo: d.repo, Revision: rev, Err: ErrNotCached,
				Hint: "unset HF_HUB_OFFLINE (or pass WithOffline(false)) and run once with network access to download it"}
			if commit == "" {
				e.Msg = fmt.Sprintf("offline mode, and the cache %s has no copy of this revision", d.cfg.cacheDir)
			} else {
				e.Msg = fmt.Sprintf("offline mode, and the cached snapshot %s lacks %s", commit, strings.Join(missing, ", "))
			}
			return "", e
		}
	}

	info, err := d.modelInfo(ctx)
	if err != nil {
		// As huggingface_hub does when the Hub cannot be reached, use a complete cached snapshot of
		// the revision instead of failing.
		if unreachable(err) {
			if commit := d.cachedCommit(rev); commit != "" &&
				len(d.dropWeights(localMissing(d.snapshot(commit), d.noExistDir(commit), d.cfg.variant, d.cfg.safety))) == 0 {
				return d.snapshot(commit), nil
			}
		}
		return "", err
	}
	commit := info.SHA
	if err := d.writeRef(rev, commit); err != nil {
		return "", err
	}
	snap := d.snapshot(commit)
	listing := make([]string, 0, len(info.Siblings))
	hasIndex := false
	for _, s := range info.Siblings {
		listing = append(listing, s.RFilename)
		hasIndex = hasIndex || s.RFilename == "model_index.json"
	}
	if !hasIndex {
		if p, ok := modelPlan(listing, d.cfg.variant); ok { // a single model (model.go)
			return d.fetchModel(ctx, commit, p)
		}
		return "", &Error{Repo: d.repo, Revision: rev, File: "model_index.json", Err: ErrNotFound,
			Msg:  "the repo has no model_index.json (nor a top-level config.json), so it is neither a diffusers pipeline nor a model",
			Hint: "pick a repo in diffusers layout (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/)"}
	}
	if err := d.ensure(ctx, commit, []string{"model_index.json"}); err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(snap, "model_index.json"))
	if err != nil {
		return "", &Error{Repo: d.repo, Revision: rev, File: "model_index.json", Err: err}
	}
	comps, err := parseModelIndex(data)
	if err != nil {
		return "", &Error{Repo: d.repo, Revision: rev, File: "model_index.json", Err: ErrBadResponse, Msg: err.Error()}
	}
	sel := selectFiles(comps, listing, d.cfg.variant, d.cfg.safety)
	if d.cfg.configsOnly {
		sel.files, sel.missing, sel.noExist = d.dropWeights(sel.files), d.dropWeights(sel.missing), nil
	}
	if len(sel.missing) > 0 {
		return "", &Error{Repo: d.repo, Revision: rev, Err: ErrNotFound,
			Msg:  "the repo lacks files the pipeline needs: " + strings.Join(sel.missing, ", "),
			Hint: "check that the repo is a complete diffusers pipeline at this revision"}
	}
	if err := d.ensure(ctx, commit, sel.files[1:]); err != nil {
		return "", err
	}
	// Remember which variant files do not exist, so the next offline or commit-hash call can trust
	// the default weights without asking (huggingface_hub's own marker for a known-absent file).
	for _, f := range sel.noExist {
		p := filepath.Join(d.noExistDir(commit), filepath.FromSlash(f))
		if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
			if fh, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				fh.Close()
			}
		}
	}
	return snap, nil
}

// cachedCommit is rev itself if it is a commit hash, else what refs/ says it pointed to, or "".
func (d *downloader) cachedCommit(rev string) string {
	if isCommit(rev) {
		return rev
	}
	return d.readRef(rev)
}

// readRef returns the commit a cached branch or tag points to, or "".
func (d *downloader) readRef(rev string) string {
	b, err := os.ReadFile(filepath.Join(d.repoDir, "refs", filepath.FromSlash(rev)))
	if err != nil {
		return ""
	}
	if c := strings.TrimSpace(string(b)); isCommit(c) {
		return c
	}
	return ""
}

// writeRef records that rev points to commit (no newline, as huggingface_hub writes it), atomically and
// only when it changed, so a read-only cache still works when nothing moved.
func (d *downloader) writeRef(rev, commit string) error {
	if rev == commit || d.readRef(rev) == commit {
		return nil
	}
	p := filepath.Join(d.repoDir, "refs", filepath.FromSlash(rev))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return &Error{Repo: d.repo, Revision: rev, Msg: "cannot write the cache", Err: err}
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".ref-*")
	if err == nil {
		_, err = tmp.WriteString(commit)
		if err == nil {
			err = tmp.Chmod(0o644)
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), p)
		}
		if err != nil {
			os.Remove(tmp.Name())
		}
	}
	if err != nil {
		return &Error{Repo: d.repo, Revision: rev, Msg: "cannot write the cache", Err: err}
	}
	return nil
}
