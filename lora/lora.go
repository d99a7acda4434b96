package lora

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// The components an adapter can patch, named as diffusers names a pipeline's models.
const (
	UNet        = "unet"
	TextEncoder = "text_encoder"
)

// Layer is one patched layer of an adapter: y = W·x + b + scale·(Alpha/Rank)·Up·(Down·x).
type Layer struct {
	// Component is UNet or TextEncoder.
	Component string
	// Key is the layer's name in the file (e.g. "lora_unet_down_blocks_0_…_to_q" or
	// "unet.down_blocks.0.….to_q"), for messages.
	Key string
	// Down is rank×in (linear layers) or rank×in×kh×kw (convolutions); Up is out×rank or
	// out×rank×1×1. Both float32.
	Down, Up *tensor.Dense
	// Alpha is the file's alpha; Factor() = Alpha/Rank, or 1 when the file has none.
	Alpha    float32
	HasAlpha bool
}

// Rank is the number of rows of Down.
func (l *Layer) Rank() int { return l.Down.Shape()[0] }

// Factor is alpha/rank, or 1 without an alpha (diffusers' own format folds it into Up).
func (l *Layer) Factor() float32 {
	if !l.HasAlpha {
		return 1
	}
	return l.Alpha / float32(l.Rank())
}

// Adapter is a loaded LoRA: its layers, keyed by component and by the patched module's name
// with '.' replaced by '_' (kohya's spelling), which is how they are matched to a model's layers.
type Adapter struct {
	// Name is the file's base name without extension, as <lora:name:scale> writes it.
	Name string
	// Path is the file it was loaded from.
	Path string

	layers map[string]map[string]*Layer // component → flat module name → layer
}

// Layers returns the adapter's layers for component, keyed by flat module name.
func (a *Adapter) Layers(component string) map[string]*Layer { return a.layers[component] }

// NumLayers returns the number of patched layers over all components.
func (a *Adapter) NumLayers() int {
	n := 0
	for _, m := range a.layers {
		n += len(m)
	}
	return n
}

// Flat spells a module path the way kohya keys and Updates do: '.' replaced by '_'.
func Flat(module string) string { return strings.ReplaceAll(module, ".", "_") }

// Load reads a LoRA file: safetensors, or a PyTorch pickle (read with package weights, no
// code run), in kohya's format (lora_unet_* / lora_te_* with .lora_down.weight,
// .lora_up.weight and .alpha; linear and convolution layers) or diffusers' (unet.<module>.lora.
// down/up.weight, text_encoder.<module>.lora_linear_layer.down/up.weight, the PEFT spelling
// lora_A/lora_B, and the older attention-processor keys …processor.to_q_lora.down.weight).
// Keys it does not understand — LyCORIS variants (LoHa, LoKr, DoRA, …), SDXL's second text
// encoder, a missing half of a pair — are an error listing them.
func Load(path string) (*Adapter, error) {
	s, err := weights.OpenFile(path, weights.WithCopy())
	if err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	defer s.Close()
	base := filepath.Base(path)
	a, err := parse(s, strings.TrimSuffix(base, filepath.Ext(base)))
	if err != nil {
		return nil, fmt.Errorf("lora: %s: %w", path, err)
	}
	a.Path = path
	return a, nil
}

// part is what a key holds for its layer.
type part int

const (
	down part = iota
	up
	alpha
)

// parseKey splits a tensor name into component, module (flat) and part; ok is false for a key
// of no known LoRA format.
func parseKey(name string) (component, module string, p part, ok bool) {
	for _, k := range []struct {
		prefix, comp string
	}{{"lora_unet_", UNet}, {"lora_te_", TextEncoder}} {
		rest, found := strings.CutPrefix(name, k.prefix)
		if !found {
			continue
		}
		for suffix, p := range map[string]part{".lora_down.weight": down, ".lora_up.weight": up, ".alpha": alpha} {
			if m, found := strings.CutSuffix(rest, suffix); found && m != "" && !strings.Contains(m, ".") {
				return k.comp, m, p, true
			}
		}
		return "", "", 0, false
	}
	comp, rest, found := strings.Cut(name, ".")
	if !found || (comp != UNet && comp != TextEncoder) {
		return "", "", 0, false
	}
	for _, s := range []struct {
		suffix string
		p      part
	}{
		{".lora.down.weight", down}, {".lora.up.weight", up},
		{".lora_linear_layer.down.weight", down}, {".lora_linear_layer.up.weight", up},
		{".lora_A.weight", down}, {".lora_B.weight", up},
		{".lora_A.default.weight", down}, {".lora_B.default.weight", up},
	} {
		if m, found := strings.CutSuffix(rest, s.suffix); found && m != "" {
			return comp, Flat(m), s.p, true
		}
	}
	// diffusers' attention-processor format: <attn>.processor.to_q_lora.down.weight.
	for proc, mod := range map[string]string{"to_q_lora": "to_q", "to_k_lora": "to_k", "to_v_lora": "to_v", "to_out_lora": "to_out.0"} {
		for suffix, p := range map[string]part{".down.weight": down, ".up.weight": up} {
			if m, found := strings.CutSuffix(rest, ".processor."+proc+suffix); found && m != "" {
				return comp, Flat(m + "." + mod), p, true
			}
		}
	}
	return "", "", 0, false
}

// parse builds an Adapter from a store's tensors.
func parse(s *weights.Store, name string) (*Adapter, error) {
	a := &Adapter{Name: name, layers: map[string]map[string]*Layer{}}
	var unknown []string
	for _, n := range s.Names() {
		comp, module, p, ok := parseKey(n)
		if !ok {
			unknown = append(unknown, n)
			continue
		}
		if a.layers[comp] == nil {
			a.layers[comp] = map[string]*Layer{}
		}
		l := a.layers[comp][module]
		if l == nil {
			l = &Layer{Component: comp, Key: n[:len(n)-len(suffixOf(n))]}
			a.layers[comp][module] = l
		}
		t, err := s.Tensor(n)
		if err != nil {
			return nil, err
		}
		switch p {
		case down:
			l.Down = t
		case up:
			l.Up = t
		case alpha:
			if t.Size() != 1 {
				return nil, fmt.Errorf("%s has %d values, want one", n, t.Size())
			}
			l.Alpha, l.HasAlpha = t.Float32s()[0], true
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		more := ""
		if len(unknown) > 8 {
			unknown, more = unknown[:8], fmt.Sprintf(" and %d more", len(unknown)-8)
		}
		return nil, fmt.Errorf("keys of no plain-LoRA format (LyCORIS LoHa/LoKr/DoRA and SDXL adapters are not supported): %s%s",
			strings.Join(unknown, ", "), more)
	}
	if a.NumLayers() == 0 {
		return nil, fmt.Errorf("no LoRA layers in the file")
	}
	for _, m := range a.layers {
		for _, l := range m {
			if err := l.check(); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

// suffixOf returns the part of a key after the layer name (".lora_down.weight", …).
func suffixOf(n string) string {
	for _, s := range []string{".lora_down.weight", ".lora_up.weight", ".alpha", ".lora.down.weight", ".lora.up.weight",
		".lora_linear_layer.down.weight", ".lora_linear_layer.up.weight", ".lora_A.weight", ".lora_B.weight",
		".lora_A.default.weight", ".lora_B.default.weight", ".down.weight", ".up.weight"} {
		if strings.HasSuffix(n, s) {
			return s
		}
	}
	return ""
}

// check requires both halves with matching ranks: down r×in(×kh×kw), up out×r(×1×1).
func (l *Layer) check() error {
	switch {
	case l.Down == nil:
		return fmt.Errorf("layer %s has no down weight", l.Key)
	case l.Up == nil:
		return fmt.Errorf("layer %s has no up weight", l.Key)
	}
	ds, us := l.Down.Shape(), l.Up.Shape()
	ok := (len(ds) == 2 && len(us) == 2 || len(ds) == 4 && len(us) == 4 && us[2] == 1 && us[3] == 1) && ds[0] == us[1] && ds[0] > 0
	if !ok {
		return fmt.Errorf("layer %s: down %v and up %v are not a rank-r pair (want r×in and out×r, or r×in×kh×kw and out×r×1×1)", l.Key, ds, us)
	}
	return nil
}
