package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ensure puts files (repo paths) into the commit's snapshot: files already there are kept, blobs
// already cached are linked, the rest are downloaded one after the other.
func (d *downloader) ensure(ctx context.Context, commit string, files []string) error {
	snap := d.snapshot(commit)
	var todo []*fileMeta
	var allTotal int64
	for _, f := range files {
		if isFile(filepath.Join(snap, filepath.FromSlash(f))) {
			continue
		}
		m, err := d.headFile(ctx, commit, f)
		if err != nil {
			return err
		}
		if isFile(d.blobPath(m.etag)) {
			if err := d.link(commit, m); err != nil {
				return err
			}
			continue
		}
		todo = append(todo, m)
		allTotal += max(m.size, 0)
	}
	pr := &progressState{d: d, count: len(todo), allTotal: allTotal}
	for i, m := range todo {
		pr.index = i + 1
		if err := d.fetch(ctx, m, pr); err != nil {
			return err
		}
		if err := d.link(commit, m); err != nil {
			return err
		}
	}
	return nil
}

func (d *downloader) blobPath(etag string) string { return filepath.Join(d.repoDir, "blobs", etag) }

// link makes snapshots/{commit}/{file} a relative symlink to ../../blobs/{etag} (one more ../ per
// folder level), as huggingface_hub does; where symlinks are not allowed it copies the blob.
func (d *downloader) link(commit string, m *fileMeta) error {
	ptr := filepath.Join(d.snapshot(commit), filepath.FromSlash(m.file))
	blob := d.blobPath(m.etag)
	fail := func(err error) error {
		return &Error{Repo: d.repo, Revision: d.cfg.revision, File: m.file, Msg: "cannot write the cache", Err: err}
	}
	if err := os.MkdirAll(filepath.Dir(ptr), 0o755); err != nil {
		return fail(err)
	}
	rel, err := filepath.Rel(filepath.Dir(ptr), blob)
	if err != nil {
		return fail(err)
	}
	if t, err := os.Readlink(ptr); err == nil && t == rel && isFile(ptr) {
		return nil // already linked (by another process or goroutine)
	}
	os.Remove(ptr) // a dangling or stale pointer
	if err := os.Symlink(rel, ptr); err != nil {
		if t, lerr := os.Readlink(ptr); lerr == nil && t == rel {
			return nil // another process made the same link meanwhile
		}
		if err := copyFile(blob, ptr); err != nil {
			return fail(err)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// fetch downloads one blob under its lock, resuming an earlier partial download, retrying an
// interrupted transfer with a Range request.
func (d *downloader) fetch(ctx context.Context, m *fileMeta, pr *progressState) error {
	blob := d.blobPath(m.etag)
	fail := func(err error) error {
		return &Error{Repo: d.repo, Revision: d.cfg.revision, File: m.file, Msg: "cannot write the cache", Err: err}
	}
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return fail(err)
	}
	lockPath := filepath.Join(d.cfg.cacheDir, ".locks", repoFolder(d.repo), m.etag+".lock")
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		return fail(err)
	}
	unlock, err := lockFile(ctx, lockPath)
	if err != nil {
		if ctx.Err() != nil {
			return d.ctxError(ctx.Err(), m.file)
		}
		return fail(err)
	}
	defer unlock()
	if isFile(blob) { // another process or goroutine finished it while we waited
		pr.allDoneBefore += max(m.size, 0)
		return nil
	}
	pr.start(m)
	for attempt := 0; ; attempt++ {
		if time.Since(m.at) > staleAfter {
			if err := d.refresh(ctx, m); err != nil {
				return err
			}
		}
		err := d.fetchOnce(ctx, m, blob, pr)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return d.ctxError(ctx.Err(), m.file)
		}
		if !isRetryable(err) {
			var he *Error
			if errors.As(err, &he) {
				return err
			}
			return fail(err)
		}
		if attempt >= d.cfg.retries {
			var he *Error
			if errors.As(err, &he) {
				return err
			}
			return &Error{Repo: d.repo, Revision: d.cfg.revision, File: m.file, Err: err,
				Msg:  fmt.Sprintf("transfer failed after %d attempt(s)", attempt+1),
				Hint: "run again to resume from the partial file " + filepath.Base(blob) + ".incomplete"}
		}
		if errors.Is(err, errStale) {
			m.at = time.Time{} // ask the Hub for a fresh URL before the next attempt
		}
		wait := min(250*time.Millisecond<<attempt, 4*time.Second)
		select {
		case <-ctx.Done():
			return d.ctxError(ctx.Err(), m.file)
		case <-time.After(wait):
		}
	}
}

// staleAfter is how old a CDN URL may be before it is asked for again: the Hub signs them for a limited
// time, and a big file or a slow line can outlast it.
const staleAfter = 10 * time.Minute

// refresh asks the Hub again for a file's download URL; the blob must be the same.
func (d *downloader) refresh(ctx context.Context, m *fileMeta) error {
	n, err := d.headFile(ctx, m.commit, m.file)
	if err != nil {
		return err
	}
	if n.etag != m.etag || n.size != m.size {
		return &Error{Repo: d.repo, Revision: d.cfg.revision, File: m.file, Err: ErrBadResponse,
			Msg: fmt.Sprintf("the file changed during the download (etag %s, then %s)", m.etag, n.etag), Hint: "run again"}
	}
	m.location, m.at = n.location, n.at
	return nil
}

// fetchOnce makes one attempt: it appends to blobs/{etag}.incomplete from where it stops (Range), and
// when the file is whole checks its size and SHA-256 and renames it to blobs/{etag}.
func (d *downloader) fetchOnce(ctx context.Context, m *fileMeta, blob string, pr *progressState) error {
	inc := blob + ".incomplete"
	f, err := os.OpenFile(inc, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	off := st.Size()
	if m.size >= 0 && off > m.size { // not a prefix of this blob
		off = 0
	}
	var h hash.Hash
	if m.lfs() {
		h = sha256.New()
	}
	restart := func() error {
		off = 0
		if h != nil {
			h.Reset()
		}
		return f.Truncate(0)
	}
	if off > 0 && h != nil {
		// The hash must cover the bytes of earlier attempts too.
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, off)); err != nil {
			return err
		}
	}
	if off == 0 {
		if err := f.Truncate(0); err != nil {
			return err
		}
	}
	if m.size < 0 || off < m.size {
		// The idle timer cancels the attempt when nothing arrives for a while; the next one resumes.
		rctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		idle := time.AfterFunc(d.cfg.idle, func() { cancel(errStalled) })
		defer idle.Stop()
		stalled := func(err error) error {
			if ctx.Err() == nil && context.Cause(rctx) == errStalled {
				return retryable{fmt.Errorf("%w (%v)", errStalled, d.cfg.idle)}
			}
			return retryable{err}
		}
		req, err := d.newRequest(rctx, http.MethodGet, m.location)
		if err != nil {
			return err
		}
		if off > 0 {
			req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
		}
		resp, err := d.cfg.client.Do(req)
		if err != nil {
			return stalled(err)
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			if off > 0 { // the server ignored the Range: start over
				if err := restart(); err != nil {
					return err
				}
			}
		case resp.StatusCode == http.StatusPartialContent && off > 0:
			if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != off {
				if err := restart(); err != nil {
					return err
				}
				return retryable{fmt.Errorf("server answered Range bytes=%d- with Content-Range %q", off, resp.Header.Get("Content-Range"))}
			}
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
			if err := restart(); err != nil {
				return err
			}
			return retryable{errors.New("server refused to resume (416); starting over")}
		case (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusGone) && !d.onHub(req.URL.Host):
			return retryable{fmt.Errorf("%w: HTTP %d from %s", errStale, resp.StatusCode, req.URL.Host)}
		default:
			err := d.httpError(resp, m.file)
			if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
				return retryable{err}
			}
			return err
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return err
		}
		n, err := copyBody(f, h, resp.Body, off, pr, func() { idle.Reset(d.cfg.idle) })
		off += n
		if err != nil {
			if isRetryable(err) {
				return stalled(err)
			}
			return err
		}
	}
	if m.size >= 0 && off != m.size {
		if off < m.size {
			return retryable{fmt.Errorf("short body: got %d of %d bytes", off, m.size)}
		}
		f.Close()
		os.Remove(inc)
		return &Error{Repo: d.repo, Revision: d.cfg.revision, File: m.file, Err: ErrIntegrity,
			Msg: fmt.Sprintf("got %d bytes, the Hub announced %d; the partial file was removed", off, m.size), Hint: "run again"}
	}
	if h != nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != m.etag {
			f.Close()
			os.Remove(inc)
			return &Error{Repo: d.repo, Revision: d.cfg.revision, File: m.file, Err: ErrIntegrity,
				Msg:  fmt.Sprintf("SHA-256 of the download is %s, want %s; the bad file was removed", got, m.etag),
				Hint: "run again; if it persists, the server or a proxy is altering the file"}
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(inc, blob); err != nil {
		return err
	}
	pr.finish(off)
	return nil
}

// copyBody appends the body to f (and the hash), reporting progress; it returns the bytes written.
// A read error is retryable: what was written stays for the Range request of the next attempt.
func copyBody(f *os.File, h hash.Hash, body io.Reader, off int64, pr *progressState, alive func()) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, rerr := body.Read(buf)
		if k > 0 {
			alive()
			if _, err := f.Write(buf[:k]); err != nil {
				return n, err
			}
			if h != nil {
				h.Write(buf[:k])
			}
			n += int64(k)
			pr.update(off+n, int64(k))
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, retryable{rerr}
		}
	}
}

// rangeStart parses the first byte of a "bytes a-b/n" Content-Range.
func rangeStart(cr string) (int64, bool) {
	s, ok := strings.CutPrefix(strings.TrimSpace(cr), "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(s, "-")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(a, 10, 64)
	return v, err == nil
}

// progressState turns byte counts into Progress reports.
type progressState struct {
	d             *downloader
	index, count  int
	allTotal      int64
	allDoneBefore int64 // bytes of the files finished before this one
	cur           Progress
	begin, last   time.Time
	received      int64 // bytes received for this file in this call
	done          int64
}

func (p *progressState) start(m *fileMeta) {
	p.begin, p.received = time.Now(), 0
	off := int64(0)
	if st, err := os.Stat(p.d.blobPath(m.etag) + ".incomplete"); err == nil && (m.size < 0 || st.Size() <= m.size) {
		off = st.Size()
	}
	p.cur = Progress{Repo: p.d.repo, File: m.file, Index: p.index, Count: p.count, Total: m.size, AllTotal: p.allTotal}
	p.done = off
	p.emit(true)
}

func (p *progressState) update(done, delta int64) {
	p.done, p.received = done, p.received+delta
	p.emit(false)
}

func (p *progressState) finish(done int64) {
	p.done = done
	p.emit(true)
	p.allDoneBefore += done
}

func (p *progressState) emit(force bool) {
	if p.d.cfg.progress == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	pg := p.cur
	pg.Done, pg.AllDone = p.done, p.allDoneBefore+p.done
	if el := now.Sub(p.begin).Seconds(); el > 0 && p.received > 0 {
		pg.Rate = float64(p.received) / el
		if pg.Total > pg.Done {
			pg.Remaining = time.Duration(float64(pg.Total-pg.Done) / pg.Rate * float64(time.Second))
		}
	}
	p.d.cfg.progress(pg)
}
