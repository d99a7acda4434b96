package hub

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// DefaultEndpoint is the Hub's address, used when neither HF_ENDPOINT nor WithEndpoint says otherwise.
const DefaultEndpoint = "https://huggingface.co"

// CacheDir returns the Hub cache folder resolved from the environment exactly as Python's huggingface_hub
// does, so both share one cache: $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE (the older name), else
// $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. A leading "~" is
// expanded. Variables set to the empty string count as unset.
func CacheDir() string {
	if d := getenv("HF_HUB_CACHE"); d != "" {
		return expandHome(d)
	}
	if d := getenv("HUGGINGFACE_HUB_CACHE"); d != "" {
		return expandHome(d)
	}
	return filepath.Join(hfHome(), "hub")
}

// hfHome is huggingface_hub's HF_HOME: $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
func hfHome() string {
	if d := getenv("HF_HOME"); d != "" {
		return expandHome(d)
	}
	if d := getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(expandHome(d), "huggingface")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "huggingface")
}

func getenv(k string) string { return strings.TrimSpace(os.Getenv(k)) }

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") || strings.HasPrefix(p, `~\`) {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// envEndpoint is $HF_ENDPOINT without a trailing slash, or DefaultEndpoint.
func envEndpoint() string {
	if e := getenv("HF_ENDPOINT"); e != "" {
		return strings.TrimRight(e, "/")
	}
	return DefaultEndpoint
}

// envToken returns the access token huggingface_hub would use: $HF_TOKEN, else $HUGGING_FACE_HUB_TOKEN,
// else the file written by `huggingface-cli login` ($HF_TOKEN_PATH, else $HF_HOME/token).
func envToken() string {
	for _, k := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if t := getenv(k); t != "" {
			return t
		}
	}
	path := getenv("HF_TOKEN_PATH")
	if path == "" {
		path = filepath.Join(hfHome(), "token")
	} else {
		path = expandHome(path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// envTrue reports whether an environment flag is on, with huggingface_hub's spelling rules
// ("1", "ON", "YES", "TRUE", any case).
func envTrue(k string) bool {
	switch strings.ToUpper(getenv(k)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// repoPartRE is one half of a repo id: word characters, '-' and '.', starting and ending with a word
// character, as huggingface_hub's validate_repo_id accepts.
var repoPartRE = regexp.MustCompile(`^[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?$`)

// validRepoID reports whether s has the form "org/name" the Hub accepts (no "--" or "..", which would
// make the cache folder name ambiguous, names of at most 96 characters).
func validRepoID(s string) bool {
	org, name, ok := strings.Cut(s, "/")
	if !ok || len(org) > 96 || len(name) > 96 || strings.Contains(s, "--") || strings.Contains(s, "..") {
		return false
	}
	return repoPartRE.MatchString(org) && repoPartRE.MatchString(name)
}

// IsRepoID reports whether s looks like a Hub repository id ("org/name") and is not an existing local
// path, so a command can accept either a model folder or a repo id in one flag.
func IsRepoID(s string) bool {
	if !validRepoID(s) {
		return false
	}
	_, err := os.Lstat(s)
	return errors.Is(err, fs.ErrNotExist)
}

// commitRE matches a full commit hash, the only revision that can never move.
var commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

func isCommit(rev string) bool { return commitRE.MatchString(rev) }

// validRevision rejects revisions that could escape refs/ when used as a path ("refs/pr/1" is fine).
func validRevision(rev string) bool {
	if rev == "" || strings.ContainsAny(rev, "\\\x00") || strings.HasPrefix(rev, "/") {
		return false
	}
	for _, seg := range strings.Split(rev, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// repoFolder is the cache folder name of a model repo: "models--org--name".
func repoFolder(repo string) string { return "models--" + strings.ReplaceAll(repo, "/", "--") }
