package weights

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Model is a model folder in diffusers layout: model_index.json and one folder per component.
type Model struct {
	// Dir is the model folder.
	Dir string
	// Class is model_index.json's "_class_name", e.g. "StableDiffusionPipeline".
	Class string
	// DiffusersVersion is model_index.json's "_diffusers_version".
	DiffusersVersion string

	components map[string]ComponentInfo
}

// ComponentInfo is one model_index.json entry such as "unet": ["diffusers",
// "UNet2DConditionModel"].
type ComponentInfo struct {
	Library string // "diffusers" or "transformers"
	Class   string // e.g. "UNet2DConditionModel"
}

// OpenModel reads dir/model_index.json. Components listed as [null, null] (an absent
// safety_checker, say) are left out; scalar entries such as requires_safety_checker are ignored.
func OpenModel(dir string) (*Model, error) {
	p := filepath.Join(dir, "model_index.json")
	data, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("weights: %s is not a diffusers model folder: no model_index.json", dir)
		}
		return nil, fmt.Errorf("weights: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("weights: %s: %w", p, err)
	}
	m := &Model{Dir: dir, components: map[string]ComponentInfo{}}
	for key, val := range raw {
		switch key {
		case "_class_name":
			_ = json.Unmarshal(val, &m.Class)
			continue
		case "_diffusers_version":
			_ = json.Unmarshal(val, &m.DiffusersVersion)
			continue
		}
		if !bytes.HasPrefix(bytes.TrimSpace(val), []byte("[")) {
			continue // a flag such as requires_safety_checker
		}
		var pair []*string
		if err := json.Unmarshal(val, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("weights: %s: entry %q is %s, want [library, class]", p, key, val)
		}
		if pair[0] == nil || pair[1] == nil {
			continue // absent component
		}
		m.components[key] = ComponentInfo{Library: *pair[0], Class: *pair[1]}
	}
	return m, nil
}

// Components returns the names of the components present, sorted.
func (m *Model) Components() []string {
	out := make([]string, 0, len(m.components))
	for k := range m.components {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Info returns the library and class model_index.json gives for component name.
func (m *Model) Info(name string) (ComponentInfo, bool) {
	ci, ok := m.components[name]
	return ci, ok
}

// Component returns the folder and class of the component called name (e.g. "unet" →
// "<dir>/unet", "UNet2DConditionModel"). It is an error when model_index.json does not list
// it or its folder is missing.
func (m *Model) Component(name string) (dir string, class string, err error) {
	ci, ok := m.components[name]
	if !ok {
		return "", "", fmt.Errorf("weights: model %s has no component %q (model_index.json lists %v)", m.Dir, name, m.Components())
	}
	dir = filepath.Join(m.Dir, name)
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return "", "", fmt.Errorf("weights: model %s: component %q (%s) has no folder %s", m.Dir, name, ci.Class, dir)
	}
	return dir, ci.Class, nil
}

// Open opens the weights of component name (see Open).
func (m *Model) Open(name string, opts ...Option) (*Store, error) {
	dir, _, err := m.Component(name)
	if err != nil {
		return nil, err
	}
	return Open(dir, opts...)
}

// ReadConfig reads component name's config (see ReadComponentConfig) into v.
func (m *Model) ReadConfig(name string, v any) error {
	dir, _, err := m.Component(name)
	if err != nil {
		return err
	}
	return ReadComponentConfig(dir, v)
}

// ReadConfig decodes the JSON file at path into v, the caller's own struct (unknown keys are
// ignored). A folder is read as ReadComponentConfig reads it, so every model's LoadConfig takes
// either the file or the component folder holding it. Errors name the file.
func ReadConfig(path string, v any) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return ReadComponentConfig(path, v)
	}
	return readConfigFile(path, v)
}

func readConfigFile(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("weights: reading config: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("weights: config %s: key %q: %w", path, te.Field, err)
		}
		return fmt.Errorf("weights: config %s: %w", path, err)
	}
	return nil
}

// ReadComponentConfig decodes dir/config.json into v, or dir/scheduler_config.json when the
// folder has no config.json (diffusers names scheduler configs that way).
func ReadComponentConfig(dir string, v any) error {
	p := filepath.Join(dir, "config.json")
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		alt := filepath.Join(dir, "scheduler_config.json")
		if _, err := os.Stat(alt); err == nil {
			p = alt
		}
	}
	return readConfigFile(p, v)
}
