package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// metaTimeout bounds one metadata request (huggingface_hub waits 10 s for an ETag; we allow more).
const metaTimeout = 30 * time.Second

const userAgent = "smallsd-hub/1 (Go; +https://github.com/smallsd/smallsd)"

// modelInfo is the part of GET /api/models/{repo}/revision/{rev} we use.
type modelInfo struct {
	SHA      string `json:"sha"`
	Siblings []struct {
		RFilename string `json:"rfilename"`
	} `json:"siblings"`
}

func escapeRepo(repo string) string {
	org, name, _ := strings.Cut(repo, "/")
	return url.PathEscape(org) + "/" + url.PathEscape(name)
}

// escapePath escapes each segment of a repo path, keeping the slashes (Python's quote(filename)).
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// resolveURL is {endpoint}/{repo}/resolve/{revision}/{path}.
func (d *downloader) resolveURL(rev, file string) string {
	return d.cfg.endpoint + "/" + escapeRepo(d.repo) + "/resolve/" + url.PathEscape(rev) + "/" + escapePath(file)
}

// newRequest builds a request with the headers every Hub request carries. The token goes only to the
// Hub's own host: signed CDN URLs must not receive it.
func (d *downloader) newRequest(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	// identity: sizes and Range offsets must count the stored bytes, not a compressed stream.
	req.Header.Set("Accept-Encoding", "identity")
	if d.cfg.token != "" && d.onHub(req.URL.Host) {
		req.Header.Set("Authorization", "Bearer "+d.cfg.token)
	}
	return req, nil
}

// onHub reports whether host is the Hub's own (not its CDN).
func (d *downloader) onHub(host string) bool {
	ep, err := url.Parse(d.cfg.endpoint)
	return err == nil && strings.EqualFold(ep.Host, host)
}

// netError wraps a failed request: the context's error if it was cancelled, else a network error with
// a hint.
func (d *downloader) netError(ctx context.Context, err error, file string) error {
	if ctx.Err() != nil {
		return d.ctxError(ctx.Err(), file)
	}
	return &Error{Repo: d.repo, Revision: d.cfg.revision, File: file, Err: err,
		Hint: fmt.Sprintf("check the network connection and %s (HF_ENDPOINT), or set HF_HUB_OFFLINE=1 to use the cache only", d.cfg.endpoint)}
}

// modelInfo asks the Hub for the revision's commit and file list.
func (d *downloader) modelInfo(ctx context.Context) (*modelInfo, error) {
	mctx, cancel := context.WithTimeout(ctx, metaTimeout)
	defer cancel()
	u := d.cfg.endpoint + "/api/models/" + escapeRepo(d.repo) + "/revision/" + url.PathEscape(d.cfg.revision)
	req, err := d.newRequest(mctx, http.MethodGet, u)
	if err != nil {
		return nil, &Error{Repo: d.repo, Revision: d.cfg.revision, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.cfg.client.Do(req)
	if err != nil {
		return nil, d.netError(ctx, err, "")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, d.httpError(resp, "")
	}
	var info modelInfo
	// Model info of a big repo is a few hundred KiB; the limit only stops a runaway answer.
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&info); err != nil {
		if ctx.Err() != nil {
			return nil, d.ctxError(ctx.Err(), "")
		}
		return nil, &Error{Repo: d.repo, Revision: d.cfg.revision, Err: ErrBadResponse,
			Msg: fmt.Sprintf("model info from %s is not valid JSON: %v", u, err), Hint: "check HF_ENDPOINT"}
	}
	if !isCommit(info.SHA) {
		return nil, &Error{Repo: d.repo, Revision: d.cfg.revision, Err: ErrBadResponse,
			Msg: fmt.Sprintf("model info from %s has no commit hash (sha %q)", u, info.SHA), Hint: "check HF_ENDPOINT"}
	}
	return &info, nil
}

// fileMeta is what a HEAD on a resolve URL tells about a file.
type fileMeta struct {
	file     string
	commit   string
	etag     string    // blob name: LFS SHA-256 or git SHA-1
	size     int64     // -1 if unknown
	location string    // where to GET it: the CDN for LFS files, else the resolve URL
	at       time.Time // when location was read (CDN URLs are signed and expire)
}

// lfs reports whether the etag is a SHA-256 (an LFS file), which the download is checked against.
func (m *fileMeta) lfs() bool { return sha256RE.MatchString(m.etag) }

// headFile reads a file's metadata as huggingface_hub's get_hf_file_metadata does: a HEAD that follows
// only relative redirects (a renamed repo), so the Hub's 302 to the CDN is seen with its X-Linked-Etag
// and X-Linked-Size headers instead of being followed.
func (d *downloader) headFile(ctx context.Context, commit, file string) (*fileMeta, error) {
	mctx, cancel := context.WithTimeout(ctx, metaTimeout)
	defer cancel()
	noFollow := *d.cfg.client
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	u := d.resolveURL(commit, file)
	var resp *http.Response
	for hops := 0; ; hops++ {
		req, err := d.newRequest(mctx, http.MethodHead, u)
		if err != nil {
			return nil, &Error{Repo: d.repo, Revision: d.cfg.revision, File: file, Err: err}
		}
		resp, err = noFollow.Do(req)
		if err != nil {
			return nil, d.netError(ctx, err, file)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode < 300 || resp.StatusCode > 399 || err != nil || loc.Host != "" || loc.Path == "" || hops >= 10 {
			break
		}
		next, _ := url.Parse(u)
		u = next.ResolveReference(loc).String()
	}
	if resp.StatusCode >= 400 {
		return nil, d.httpError(resp, file)
	}
	bad := func(msg string) error {
		return &Error{Repo: d.repo, Revision: d.cfg.revision, File: file, Err: ErrBadResponse,
			Msg: msg, Hint: fmt.Sprintf("%s does not answer like the Hugging Face Hub (check HF_ENDPOINT)", d.cfg.endpoint)}
	}
	h := resp.Header
	etag := h.Get("X-Linked-Etag")
	if etag == "" {
		etag = h.Get("ETag")
	}
	etag = strings.Trim(strings.TrimPrefix(strings.TrimSpace(etag), "W/"), `"`)
	if etag == "" {
		return nil, bad("no ETag or X-Linked-Etag header, so the file cannot be cached reliably")
	}
	if strings.ContainsAny(etag, `/\:`+"\x00") || strings.HasPrefix(etag, ".") || len(etag) > 200 {
		return nil, bad(fmt.Sprintf("ETag %q cannot name a cache file", etag))
	}
	if c := h.Get("X-Repo-Commit"); c == "" {
		return nil, bad("no X-Repo-Commit header")
	} else if c != commit {
		return nil, bad(fmt.Sprintf("X-Repo-Commit %s is not the requested commit %s", c, commit))
	}
	m := &fileMeta{file: file, commit: commit, etag: etag, size: -1, location: u, at: time.Now()}
	for _, k := range []string{"X-Linked-Size", "Content-Length"} {
		if v := h.Get(k); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, bad(fmt.Sprintf("%s %q is not a size", k, v))
			}
			m.size = n
			break
		}
	}
	if loc := h.Get("Location"); loc != "" {
		base, _ := url.Parse(u)
		l, err := base.Parse(loc)
		if err != nil {
			return nil, bad(fmt.Sprintf("Location %q: %v", loc, err))
		}
		m.location = l.String()
	}
	return m, nil
}

// errStale: the CDN refused a signed URL, most likely expired; a fresh HEAD gives a new one.
var errStale = errors.New("download URL refused (expired?)")

// errStalled: no byte arrived for the idle timeout.
var errStalled = errors.New("no data received for too long")

// retryable marks a transfer failure that a resumed attempt may cure.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

func isRetryable(err error) bool {
	var r retryable
	return errors.As(err, &r)
}
