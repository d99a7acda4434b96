package hub

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCacheDir(t *testing.T) {
	isolate(t)
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home folder:", err)
	}
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HF_HOME": ""}, filepath.Join(home, ".cache", "huggingface", "hub")},
		{map[string]string{"HF_HOME": "", "XDG_CACHE_HOME": "/x"}, "/x/huggingface/hub"},
		{map[string]string{"HF_HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/h/hub"},
		{map[string]string{"HF_HOME": "~/hf"}, filepath.Join(home, "hf", "hub")},
		{map[string]string{"HF_HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/old"}, "/old"},
		{map[string]string{"HF_HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/old", "HF_HUB_CACHE": "/new"}, "/new"},
	}
	for _, c := range cases {
		t.Run("", func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			if got := CacheDir(); got != filepath.FromSlash(c.want) {
				t.Errorf("%v: CacheDir() = %s, want %s", c.env, got, c.want)
			}
		})
	}
}

// TestEnvOptions: the environment is read when options are resolved, and options override it.
func TestEnvOptions(t *testing.T) {
	isolate(t)
	t.Setenv("HF_ENDPOINT", "https://mirror.example/")
	t.Setenv("HF_TOKEN", "hf_env")
	t.Setenv("HF_HUB_OFFLINE", "yes")
	t.Setenv("HF_HUB_CACHE", "/env/cache")
	c, err := resolveConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.endpoint != "https://mirror.example" || c.token != "hf_env" || !c.offline || c.cacheDir != filepath.FromSlash("/env/cache") || c.revision != "main" {
		t.Errorf("from the environment: %+v", c)
	}
	c, err = resolveConfig([]Option{WithEndpoint("http://other/"), WithToken(""), WithOffline(false), WithCacheDir("/opt/c"), WithRevision("v1")})
	if err != nil {
		t.Fatal(err)
	}
	if c.endpoint != "http://other" || c.token != "" || c.offline || c.cacheDir != filepath.FromSlash("/opt/c") || c.revision != "v1" {
		t.Errorf("options over the environment: %+v", c)
	}
	t.Setenv("HF_HUB_OFFLINE", "0")
	if c, _ := resolveConfig(nil); c.offline {
		t.Error("HF_HUB_OFFLINE=0 is offline")
	}
}

func TestIsRepoID(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "org", "local"), 0o755))
	t.Chdir(dir)
	for s, want := range map[string]bool{
		"OFA-Sys/small-stable-diffusion-v0": true,
		"runwayml/stable-diffusion-v1-5":    true,
		"a/b":                               true,
		"user_1/model.v2":                   true,
		"org/local":                         false, // an existing folder wins
		"gpt2":                              false,
		"a/b/c":                             false,
		"/abs/path":                         false,
		"./rel/x":                           false,
		"../x":                              false,
		"org/-name":                         false,
		"org/name.":                         false,
		"org/na--me":                        false,
		"org/na..me":                        false,
		"org/na me":                         false,
		`C:\models\sd`:                      false,
		"":                                  false,
	} {
		if got := IsRepoID(s); got != want {
			t.Errorf("IsRepoID(%q) = %v, want %v", s, got, want)
		}
	}
}
