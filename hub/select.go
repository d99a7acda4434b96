package hub

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// component is one entry of model_index.json, e.g. "unet": ["diffusers", "UNet2DConditionModel"].
type component struct{ name, library, class string }

// parseModelIndex returns the pipeline's components in name order. Entries whose library or class is
// null (an absent component such as a removed safety checker) and scalar keys are skipped.
func parseModelIndex(data []byte) ([]component, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("model_index.json: %w", err)
	}
	var comps []component
	for k, v := range m {
		if strings.HasPrefix(k, "_") {
			continue
		}
		var pair []*string
		if json.Unmarshal(v, &pair) != nil || len(pair) != 2 || pair[0] == nil || pair[1] == nil {
			continue
		}
		if !repoPartRE.MatchString(k) {
			return nil, fmt.Errorf("model_index.json: component name %q is not a plain folder name", k)
		}
		comps = append(comps, component{k, *pair[0], *pair[1]})
	}
	sort.Slice(comps, func(i, j int) bool { return comps[i].name < comps[j].name })
	return comps, nil
}

// wanted reports whether the pipeline needs a component: everything but the safety checker and its
// feature extractor, which come only on request.
func wanted(c component, safety bool) bool {
	if c.name == "safety_checker" || c.name == "feature_extractor" {
		return safety
	}
	return true
}

// configNames are the small files a component folder may need besides its weights.
var configNames = map[string]bool{
	"config.json": true, "scheduler_config.json": true, "preprocessor_config.json": true,
	"vocab.json": true, "merges.txt": true, "tokenizer_config.json": true,
	"special_tokens_map.json": true, "added_tokens.json": true,
}

// Weight file names, as diffusers' variant_compatible_siblings reads them: a prefix, an optional variant
// before or after an optional shard number, and .safetensors or .bin; index files of sharded weights.
var (
	weightRE = regexp.MustCompile(`^(diffusion_pytorch_model|pytorch_model|model)(?:\.([0-9A-Za-z_]+))?(-\d{5}-of-\d{5})?(?:\.([0-9A-Za-z_]+))?\.(safetensors|bin)$`)
	indexRE  = regexp.MustCompile(`^(diffusion_pytorch_model|pytorch_model|model)\.(safetensors|bin)\.index(?:\.([0-9A-Za-z_]+))?\.json$`)
)

// weightFile is a parsed weight or index file name.
type weightFile struct {
	name    string // base name
	format  string // "safetensors" or "bin"
	variant string // "" for the default weights
	sharded bool   // a shard or an index
	index   bool
}

func parseWeight(name string) (weightFile, bool) {
	if m := indexRE.FindStringSubmatch(name); m != nil {
		return weightFile{name: name, format: m[2], variant: m[3], sharded: true, index: true}, true
	}
	m := weightRE.FindStringSubmatch(name)
	if m == nil || (m[2] != "" && m[4] != "") {
		return weightFile{}, false
	}
	return weightFile{name: name, format: m[5], variant: m[2] + m[4], sharded: m[3] != ""}, true
}

// variantName is the name the variant of a single-file weight would have
// ("diffusion_pytorch_model.safetensors" → "diffusion_pytorch_model.fp16.safetensors").
func variantName(w weightFile, variant string) string {
	if w.sharded {
		return ""
	}
	stem, ext, _ := strings.Cut(w.name, ".")
	return stem + "." + variant + "." + ext
}

// kind of a component, from its class name.
type kind int

const (
	kindModel kind = iota
	kindScheduler
	kindTokenizer
	kindProcessor
)

func kindOf(c component) kind {
	switch {
	case strings.Contains(c.class, "Scheduler"):
		return kindScheduler
	case strings.Contains(c.class, "Tokenizer"):
		return kindTokenizer
	case strings.Contains(c.class, "FeatureExtractor") || strings.Contains(c.class, "ImageProcessor"):
		return kindProcessor
	}
	return kindModel
}

// compPlan is what to fetch for one component.
type compPlan struct {
	files    []string     // repo paths to fetch
	fallback []weightFile // default weights taken because the requested variant does not exist
	missing  []string     // repo paths the component needs but the listing lacks
}

// planComponent picks a component's files from the names in its folder (direct children only):
// config files, then the weights — the requested variant if the folder has it (else the default
// weights), .safetensors if the folder has them (else .bin); never flax, onnx or ckpt files.
func planComponent(c component, names []string, variant string) compPlan {
	var p compPlan
	have := map[string]bool{}
	var ws []weightFile
	for _, n := range names {
		have[n] = true
		if configNames[n] {
			p.files = append(p.files, c.name+"/"+n)
		} else if w, ok := parseWeight(n); ok {
			ws = append(ws, w)
		}
	}
	need := func(names ...string) {
		for _, n := range names {
			if !have[n] {
				p.missing = append(p.missing, c.name+"/"+n)
			}
		}
	}
	switch kindOf(c) {
	case kindScheduler:
		need("scheduler_config.json")
	case kindProcessor:
		need("preprocessor_config.json")
	case kindTokenizer:
		if strings.HasPrefix(c.class, "CLIPTokenizer") {
			need("vocab.json", "merges.txt")
		} else {
			need("tokenizer_config.json")
		}
	case kindModel:
		need("config.json")
		pick := func(v string) []weightFile {
			var st, bin []weightFile
			for _, w := range ws {
				if w.variant == v && w.format == "safetensors" {
					st = append(st, w)
				} else if w.variant == v {
					bin = append(bin, w)
				}
			}
			if len(st) > 0 {
				return st
			}
			return bin
		}
		var chosen []weightFile
		if variant != "" {
			chosen = pick(variant)
		}
		if len(chosen) == 0 {
			chosen = pick("")
			if variant != "" {
				p.fallback = chosen
			}
		}
		if len(chosen) == 0 {
			p.missing = append(p.missing, c.name+"/(weights: *.safetensors or *.bin)")
		}
		for _, w := range chosen {
			p.files = append(p.files, c.name+"/"+w.name)
		}
	}
	return p
}

// selection is the whole set of files a pipeline needs.
type selection struct {
	files   []string // sorted repo paths, model_index.json first
	noExist []string // variant files known not to exist (recorded in .no_exist/ as huggingface_hub does)
	missing []string // needed files the listing lacks
}

// selectFiles plans the download from model_index.json and a listing of the repo's files.
func selectFiles(comps []component, listing []string, variant string, safety bool) selection {
	byDir := map[string][]string{}
	for _, f := range listing {
		if dir, base, ok := strings.Cut(f, "/"); ok && !strings.Contains(base, "/") {
			byDir[dir] = append(byDir[dir], base)
		}
	}
	s := selection{files: []string{"model_index.json"}}
	for _, c := range comps {
		if !wanted(c, safety) {
			continue
		}
		p := planComponent(c, byDir[c.name], variant)
		s.files = append(s.files, p.files...)
		s.missing = append(s.missing, p.missing...)
		for _, w := range p.fallback {
			if n := variantName(w, variant); n != "" {
				s.noExist = append(s.noExist, c.name+"/"+n)
			}
		}
	}
	sort.Strings(s.files[1:])
	return s
}

// localMissing says what a cached snapshot lacks for the pipeline, judging from its own files; nil means
// it is complete. It is how a commit-hash or offline request is answered without asking the Hub.
func localMissing(snap, noExistDir string, variant string, safety bool) []string {
	if m, ok := modelMissing(snap, noExistDir, variant); ok {
		return m
	}
	data, err := os.ReadFile(filepath.Join(snap, "model_index.json"))
	if err != nil {
		return []string{"model_index.json"}
	}
	comps, err := parseModelIndex(data)
	if err != nil {
		return []string{"model_index.json (unreadable: " + err.Error() + ")"}
	}
	var missing []string
	for _, c := range comps {
		if !wanted(c, safety) {
			continue
		}
		names := listFiles(filepath.Join(snap, c.name))
		p := planComponent(c, names, variant)
		missing = append(missing, p.missing...)
		// Default weights stand in for a variant only if the Hub said the variant does not exist.
		for _, w := range p.fallback {
			n := variantName(w, variant)
			if n == "" || !isFile(filepath.Join(noExistDir, c.name, n)) {
				missing = append(missing, c.name+"/"+w.name+" ("+variant+" variant not known to be absent)")
			}
		}
		for _, f := range p.files {
			if w, ok := parseWeight(path.Base(f)); ok && w.index {
				missing = append(missing, missingShards(snap, f)...)
			}
		}
	}
	return missing
}

// missingShards lists the shards a cached index file names that are not in the snapshot.
func missingShards(snap, index string) []string {
	data, err := os.ReadFile(filepath.Join(snap, filepath.FromSlash(index)))
	if err != nil {
		return []string{index}
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if json.Unmarshal(data, &idx) != nil {
		return []string{index + " (unreadable)"}
	}
	var missing []string
	seen := map[string]bool{}
	dir := path.Dir(index)
	for _, shard := range idx.WeightMap {
		f := path.Join(dir, shard)
		if !seen[f] && !isFile(filepath.Join(snap, filepath.FromSlash(f))) {
			missing = append(missing, f)
		}
		seen[f] = true
	}
	sort.Strings(missing)
	return missing
}

// listFiles lists the regular files (following symlinks) directly in dir.
func listFiles(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		if isFile(filepath.Join(dir, e.Name())) {
			names = append(names, e.Name())
		}
	}
	return names
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// dropWeights removes weight files (and notes about missing weights) from a list of repo paths
// when only configs are wanted (WithConfigsOnly); otherwise it returns list unchanged.
func (d *downloader) dropWeights(list []string) []string {
	if !d.cfg.configsOnly {
		return list
	}
	var out []string
	for _, f := range list {
		name, _, _ := strings.Cut(path.Base(f), " ")
		if _, weight := parseWeight(name); weight || strings.Contains(f, "(weights") {
			continue
		}
		out = append(out, f)
	}
	return out
}
