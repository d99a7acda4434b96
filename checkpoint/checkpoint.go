package checkpoint

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// File is an open single-file SD 1.x checkpoint. Its UNet, VAE and TextEncoder views present
// the file's tensors under the diffusers names the unet, vae and clip packages ask for; the
// configs those packages need are inferred from the keys and shapes (UNetConfig, VAEConfig,
// TextEncoderConfig). Close releases the file.
type File struct {
	store *weights.Store
	path  string

	unet unetMap
	vae  vaeMap
	// textModel is "text_model." when the text encoder's keys carry it (transformers ≥ 4.?,
	// every SD 1.x release), "" for the older layout without it.
	textModel string
}

// Open opens a single-file checkpoint: safetensors, or a PyTorch .ckpt (zip or legacy pickle,
// tensors possibly under "state_dict"; read without running any pickled code). opts are
// weights' (weights.WithHalf, weights.WithCopy). Files that are not SD 1.x are refused with an
// error saying what they look like (SD 2.x, SDXL, a LoRA, a diffusers component, …).
func Open(path string, opts ...weights.Option) (*File, error) {
	s, err := weights.OpenFile(path, opts...)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	f := &File{store: s, path: path}
	if err := f.init(); err != nil {
		s.Close()
		return nil, err
	}
	return f, nil
}

// init checks what kind of file this is and works out the block numbering.
func (f *File) init() error {
	names := f.store.Names()
	has := func(prefix string) bool {
		for _, n := range names {
			if strings.HasPrefix(n, prefix) {
				return true
			}
		}
		return false
	}
	switch {
	case has("conditioner.embedders.") || has(unetPrefix+"label_emb."):
		return fmt.Errorf("checkpoint: %s is an SDXL checkpoint (conditioner.embedders / label_emb tensors); only SD 1.x is supported", f.path)
	case has("cond_stage_model.model."):
		return fmt.Errorf("checkpoint: %s is an SD 2.x checkpoint (OpenCLIP text encoder under cond_stage_model.model); only SD 1.x is supported", f.path)
	case has("lora_unet_") || has("lora_te_") || slices.ContainsFunc(names, isLoRAName):
		return fmt.Errorf("checkpoint: %s is a LoRA adapter, not a model: load a model and pass the file as a LoRA", f.path)
	}
	var missing []string
	for _, p := range []string{unetPrefix, vaePrefix, textPrefix} {
		if !has(p) {
			missing = append(missing, p+"*")
		}
	}
	if len(missing) > 0 {
		eg := names
		if len(eg) > 3 {
			eg = eg[:3]
		}
		return fmt.Errorf("checkpoint: %s is not a single-file SD 1.x checkpoint: it has no %s tensors (it holds %d tensors, e.g. %s)",
			f.path, strings.Join(missing, ", "), len(names), strings.Join(eg, ", "))
	}
	// n: the first input block holding a downsampler is input_blocks.n.
	f.unet.n = 0
	for k := 1; k < 64; k++ {
		if f.store.Has(fmt.Sprintf("%sinput_blocks.%d.0.op.weight", unetPrefix, k)) {
			f.unet.n = k
			break
		}
	}
	if f.unet.n < 2 {
		return fmt.Errorf("checkpoint: %s: no downsampler found among model.diffusion_model.input_blocks.*.0.op (the UNet layout is not SD 1.x's)", f.path)
	}
	f.unet.has = func(name string) bool { return f.store.Has(unetPrefix + name) }
	for f.store.Has(fmt.Sprintf("%sdecoder.up.%d.block.0.conv1.weight", vaePrefix, f.vae.levels)) {
		f.vae.levels++
	}
	if f.vae.levels == 0 {
		return fmt.Errorf("checkpoint: %s: no first_stage_model.decoder.up.0.block.0.conv1.weight (the VAE layout is not SD 1.x's)", f.path)
	}
	if has(textPrefix + "text_model.") {
		f.textModel = "text_model."
	}
	return nil
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// Store returns the underlying weights store (LDM names).
func (f *File) Store() *weights.Store { return f.store }

// Close releases the file; tensors handed out from a memory-mapped file must not be used
// afterwards.
func (f *File) Close() error { return f.store.Close() }

// LayersPerBlock returns the UNet's layers_per_block as the LDM block numbering shows it.
func (f *File) LayersPerBlock() int { return f.unet.n - 1 }

// UNet returns the UNet's tensors under diffusers' names (conv_in.weight,
// down_blocks.0.resnets.0.conv1.weight, …).
func (f *File) UNet() weights.View {
	return weights.NewView(&component{f: f, what: "UNet", prefix: unetPrefix, ldm: f.unet.ldm})
}

// VAE returns the autoencoder's tensors under diffusers' names (decoder.conv_in.weight,
// decoder.mid_block.attentions.0.to_q.weight, …, also the pre-0.14 query/key/value/proj_attn).
func (f *File) VAE() weights.View {
	return weights.NewView(&component{f: f, what: "VAE", prefix: vaePrefix, ldm: f.vae.ldm})
}

// TextEncoder returns the CLIP text encoder's tensors under transformers' names
// (text_model.embeddings.token_embedding.weight, …).
func (f *File) TextEncoder() weights.View {
	return weights.NewView(&component{f: f, what: "text encoder", prefix: textPrefix, ldm: func(name string) (string, bool) {
		rest, ok := strings.CutPrefix(name, "text_model.")
		if !ok {
			return "", false
		}
		return f.textModel + rest, true
	}})
}

// CheckUnused returns an error naming the tensors under component's LDM prefix ("unet",
// "text_encoder" or "vae") that no model fetched, ignoring the diffusers names in ignore.
// Called after the models are built, it tells a checkpoint the config does not describe.
func (f *File) CheckUnused(component string, ignore ...string) error {
	prefix := map[string]string{"unet": unetPrefix, "vae": vaePrefix, "text_encoder": textPrefix}[component]
	if prefix == "" {
		return fmt.Errorf("checkpoint: unknown component %q", component)
	}
	skip := map[string]bool{}
	for _, n := range ignore {
		skip[prefix+strings.Replace(n, "text_model.", f.textModel, 1)] = true
	}
	var unused []string
	for _, n := range f.store.Unused() {
		if strings.HasPrefix(n, prefix) && !skip[n] {
			unused = append(unused, n)
		}
	}
	if len(unused) == 0 {
		return nil
	}
	sort.Strings(unused)
	more := ""
	if len(unused) > 5 {
		unused, more = unused[:5], fmt.Sprintf(" and %d more", len(unused)-5)
	}
	return fmt.Errorf("checkpoint: %s holds %s tensors the config does not use: %s%s", f.path, component, strings.Join(unused, ", "), more)
}

// component is the weights.Source of one model in the file: diffusers names in, LDM names out.
type component struct {
	f      *File
	what   string
	prefix string
	ldm    func(diffusers string) (string, bool)
}

// resolve returns the full LDM name of a diffusers name, or an error naming both.
func (c *component) resolve(name string) (string, error) {
	l, ok := c.ldm(name)
	if !ok {
		return "", fmt.Errorf("checkpoint: %s: the %s tensor %q has no LDM counterpart in an SD 1.x checkpoint", c.f.path, c.what, name)
	}
	full := c.prefix + l
	if !c.f.store.Has(full) {
		return "", fmt.Errorf("checkpoint: %s: tensor %q (the %s's %q) not found", c.f.path, full, c.what, name)
	}
	return full, nil
}

// shapeFor checks the stored shape against the requested one; LDM keeps the VAE attention's
// projections as 1×1 convolutions ([C, C, 1, 1]) where diffusers has [C, C]: shapes equal after
// dropping trailing ones are accepted and reshaped.
func (c *component) shapeFor(full string, want []int) (stored []int, reshape bool, err error) {
	stored, _ = c.f.store.Shape(full)
	if want == nil || equal(stored, want) {
		return stored, false, nil
	}
	if equal(trimOnes(stored), trimOnes(want)) {
		return stored, true, nil
	}
	return nil, false, fmt.Errorf("checkpoint: %s: tensor %q has shape %v, want %v", c.f.path, full, stored, want)
}

func (c *component) Tensor(name string, shape ...int) (*tensor.Dense, error) {
	full, err := c.resolve(name)
	if err != nil {
		return nil, err
	}
	stored, reshape, err := c.shapeFor(full, shape)
	if err != nil {
		return nil, err
	}
	t, err := c.f.store.Tensor(full, stored...)
	if err != nil || !reshape {
		return t, err
	}
	r := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(t.Float32s()[:t.Size()]))
	return r, nil
}

func (c *component) Has(name string) bool {
	l, ok := c.ldm(name)
	return ok && c.f.store.Has(c.prefix+l)
}

func (c *component) Shape(name string) ([]int, bool) {
	l, ok := c.ldm(name)
	if !ok {
		return nil, false
	}
	return c.f.store.Shape(c.prefix + l)
}

// PreferHalf reports whether the file was opened with weights.WithHalf.
func (c *component) PreferHalf() bool { return c.f.store.PreferHalf() }

// TensorHalf is Tensor as IEEE half bits.
func (c *component) TensorHalf(name string, shape ...int) ([]uint16, error) {
	full, err := c.resolve(name)
	if err != nil {
		return nil, err
	}
	stored, _, err := c.shapeFor(full, shape)
	if err != nil {
		return nil, err
	}
	return c.f.store.TensorHalf(full, stored...)
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func trimOnes(s []int) []int {
	for len(s) > 0 && s[len(s)-1] == 1 {
		s = s[:len(s)-1]
	}
	return s
}

// isLoRAName reports whether a tensor name is a LoRA adapter's (kohya or diffusers format).
func isLoRAName(n string) bool {
	return strings.Contains(n, ".lora_down.") || strings.Contains(n, ".lora.down.") || strings.Contains(n, ".lora_linear_layer.")
}
