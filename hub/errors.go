package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Sentinel errors; test with errors.Is. Every error Download returns also names the repo and, where one
// is involved, the file and the HTTP status.
var (
	// ErrAccess: the Hub refused access (HTTP 401/403): the repo is gated or private.
	ErrAccess = errors.New("access denied")
	// ErrNotFound: the repo, revision or file does not exist on the Hub (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrNotCached: offline mode is on and the cache does not hold the whole pipeline.
	ErrNotCached = errors.New("not in the local cache")
	// ErrIntegrity: a downloaded file does not match its SHA-256 or size; it was not kept.
	ErrIntegrity = errors.New("integrity check failed")
	// ErrBadResponse: the server's answer was not what the Hub sends (bad JSON, missing headers).
	ErrBadResponse = errors.New("unexpected response")
)

// Error is the error type of this package. Use errors.Is with the sentinels above, or errors.As to
// read the fields.
type Error struct {
	Repo     string // repo id, e.g. "OFA-Sys/small-stable-diffusion-v0"
	Revision string // requested revision
	File     string // path inside the repo, "" when the repo as a whole is concerned
	Status   int    // HTTP status, 0 when no HTTP answer is involved
	Code     string // the Hub's X-Error-Code header (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo), if any
	Msg      string // what went wrong
	Hint     string // what to do about it
	Err      error  // the sentinel or underlying error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("hub: ")
	b.WriteString(e.Repo)
	if e.Revision != "" {
		fmt.Fprintf(&b, " (revision %s)", e.Revision)
	}
	if e.File != "" {
		fmt.Fprintf(&b, ", file %s", e.File)
	}
	b.WriteString(": ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d %s", e.Status, http.StatusText(e.Status))
		if e.Code != "" {
			fmt.Fprintf(&b, " (%s)", e.Code)
		}
		if e.Msg != "" {
			b.WriteString(": ")
		}
	}
	b.WriteString(e.Msg)
	if e.Err != nil && !isSentinel(e.Err) {
		if e.Msg != "" || e.Status != 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func isSentinel(err error) bool {
	switch err {
	case ErrAccess, ErrNotFound, ErrNotCached, ErrIntegrity, ErrBadResponse:
		return true
	}
	return false
}

// Unwrap returns the sentinel or underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is makes a "repository not found" answer match ErrNotFound even when the Hub sent it as a 401 (it
// does so for unknown repos, so as not to reveal private ones).
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.Code == "RepoNotFound"
}

// unreachable reports whether a request failed for want of a (working) server rather than by the
// server's answer: no connection, a timeout, or a server error.
func unreachable(err error) bool {
	var e *Error
	if !errors.As(err, &e) || errors.Is(err, context.Canceled) {
		return false
	}
	var ue *url.Error
	return e.Status >= 500 || (e.Status == 0 && errors.As(err, &ue))
}

// httpError turns a failed answer into an *Error that says what to do.
func (d *downloader) httpError(resp *http.Response, file string) error {
	e := &Error{Repo: d.repo, Revision: d.cfg.revision, File: file, Status: resp.StatusCode,
		Code: resp.Header.Get("X-Error-Code"), Msg: resp.Header.Get("X-Error-Message")}
	if e.Msg == "" && resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		e.Msg = strings.Join(strings.Fields(string(b)), " ")
		if strings.HasPrefix(e.Msg, "<") { // an HTML error page says nothing useful in a terminal
			e.Msg = ""
		}
	}
	e.Msg = strings.TrimRight(e.Msg, ". ")
	page := d.cfg.endpoint + "/" + d.repo
	switch {
	case e.Code == "RepoNotFound":
		e.Err = ErrAccess
		if resp.StatusCode == http.StatusNotFound {
			e.Err = ErrNotFound
		}
		e.Hint = fmt.Sprintf("no repository %q is visible: check the id (org/name); if it is private or gated, "+
			"set HF_TOKEN to an access token (https://huggingface.co/settings/tokens) of an account that can see it", d.repo)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || e.Code == "GatedRepo":
		e.Err = ErrAccess
		if d.cfg.token == "" {
			e.Hint = fmt.Sprintf("the repository is gated or private: accept its licence at %s, then set HF_TOKEN "+
				"to an access token (https://huggingface.co/settings/tokens)", page)
		} else {
			e.Hint = fmt.Sprintf("the token was refused: check that HF_TOKEN is valid and that its account has "+
				"accepted the licence at %s", page)
		}
	case e.Code == "RevisionNotFound":
		e.Err = ErrNotFound
		e.Hint = fmt.Sprintf("revision %q does not exist: use a branch, tag or commit hash listed at %s", d.cfg.revision, page)
	case e.Code == "EntryNotFound" || (resp.StatusCode == http.StatusNotFound && file != ""):
		e.Err = ErrNotFound
		e.Hint = fmt.Sprintf("the Hub lists the file but will not serve it; try again, or check the repo at %s", page)
	case resp.StatusCode == http.StatusNotFound:
		e.Err = ErrNotFound
		e.Hint = fmt.Sprintf("unknown repo or revision: check the id %q (org/name) and the revision %q", d.repo, d.cfg.revision)
	case resp.StatusCode == http.StatusTooManyRequests:
		e.Hint = "the Hub is rate-limiting this address: wait a minute and try again (a token raises the limit)"
	case resp.StatusCode >= 500:
		e.Hint = "the Hub had a server error: try again later"
	}
	return e
}
