package server

import (
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/smallsd/smallsd/pipeline"
)

// loraExts are the file types a LoRA folder is searched for, in order.
var loraExts = []string{".safetensors", ".pt", ".ckpt", ".bin"}

// WithLoRADir lets prompts apply LoRA adapters as the web UI's do, with <lora:name:scale> tags
// (removed from the prompt before it is encoded): name is a file in dir (name.safetensors, or
// .pt, .ckpt, .bin), as in the web UI's models/Lora folder. GET /sdapi/v1/loras lists them.
// Without it, a prompt with a LoRA tag is refused (422 naming the prompt).
func WithLoRADir(dir string) Option { return func(s *Server) { s.loraDir = dir } }

// loras takes the LoRA tags out of prompt and finds their files.
func (s *Server) loras(prompt string) (string, []pipeline.LoRA, error) {
	clean, tags, err := pipeline.ParseLoRATags(prompt)
	if err != nil {
		return "", nil, badField("prompt", "%v", err)
	}
	if len(tags) == 0 {
		return prompt, nil, nil
	}
	if s.loraDir == "" {
		return "", nil, badField("prompt", "LoRA tags (<lora:%s:…>) need a LoRA folder; the server has none (webui -lora-dir)", tags[0].Name)
	}
	var out []pipeline.LoRA
	for _, t := range tags {
		if strings.ContainsAny(t.Name, `/\`) || t.Name == "." || t.Name == ".." {
			return "", nil, badField("prompt", "LoRA name %q is not a plain file name", t.Name)
		}
		path := ""
		for _, ext := range loraExts {
			p := filepath.Join(s.loraDir, t.Name+ext)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				path = p
				break
			}
		}
		if path == "" {
			return "", nil, badField("prompt", "LoRA %q not found in the LoRA folder (see GET /sdapi/v1/loras)", t.Name)
		}
		out = append(out, pipeline.LoRA{Path: path, Scale: t.Scale})
	}
	return clean, out, nil
}

// handleLoras lists the LoRA folder as the web UI's GET /sdapi/v1/loras does.
func (s *Server) handleLoras(w http.ResponseWriter, r *http.Request) {
	type entry struct {
		Name     string         `json:"name"`
		Alias    string         `json:"alias"`
		Path     string         `json:"path"`
		Metadata map[string]any `json:"metadata"`
	}
	list := []entry{}
	if s.loraDir != "" {
		ents, _ := os.ReadDir(s.loraDir)
		for _, e := range ents {
			ext := filepath.Ext(e.Name())
			if e.IsDir() || !contains(loraExts, ext) {
				continue
			}
			name := strings.TrimSuffix(e.Name(), ext)
			list = append(list, entry{Name: name, Alias: name, Path: filepath.Join(s.loraDir, e.Name()), Metadata: map[string]any{}})
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	writeJSON(w, http.StatusOK, list)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
