package weights

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Option changes how Open and OpenFile read weights.
type Option func(*options)

type options struct {
	variant string
	noMmap  bool
	half    bool
	bf16    bool
}

// WithVariant makes Open read the named variant, e.g. "fp16" picks model.fp16.safetensors or
// diffusion_pytorch_model.fp16.safetensors (or the .bin equivalents). It is an error when the
// component has no such file. The empty string means the default files.
func WithVariant(variant string) Option { return func(o *options) { o.variant = variant } }

// WithCopy makes the Store read the file into memory instead of mapping it, so tensors it hands
// out stay valid after Close (the memory is then freed by the garbage collector).
func WithCopy() Option { return func(o *options) { o.noMmap = true } }

// weightFiles are the file names Open tries, in order, before the variant is inserted.
var weightFiles = []string{
	"model.safetensors",
	"diffusion_pytorch_model.safetensors",
	"pytorch_model.bin",
	"diffusion_pytorch_model.bin",
}

// WeightFile returns the weights file Open would read in componentDir.
func WeightFile(componentDir string, opts ...Option) (string, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	fi, err := os.Stat(componentDir)
	if err != nil {
		return "", fmt.Errorf("weights: component folder: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("weights: component folder %s is not a directory", componentDir)
	}
	var tried []string
	for _, name := range weightFiles {
		if o.variant != "" {
			ext := filepath.Ext(name)
			name = strings.TrimSuffix(name, ext) + "." + o.variant + ext
		}
		tried = append(tried, name)
		p := filepath.Join(componentDir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("weights: %w", err)
		}
	}
	if o.variant != "" {
		return "", fmt.Errorf("weights: no %q variant weights in %s (looked for %s)", o.variant, componentDir, strings.Join(tried, ", "))
	}
	return "", fmt.Errorf("weights: no weights file in %s (looked for %s)", componentDir, strings.Join(tried, ", "))
}

// Open opens the weights of one component folder (e.g. model/unet): model.safetensors or
// diffusion_pytorch_model.safetensors, else pytorch_model.bin or diffusion_pytorch_model.bin
// (see WithVariant). Close the Store when done.
func Open(componentDir string, opts ...Option) (*Store, error) {
	p, err := WeightFile(componentDir, opts...)
	if err != nil {
		return nil, err
	}
	return OpenFile(p, opts...)
}

// OpenFile opens one weights file: safetensors, or a PyTorch checkpoint (zip or legacy pickle
// format). The format is taken from the contents, not the name. WithVariant is ignored;
// WithHalf makes the Store PreferHalf.
func OpenFile(path string, opts ...Option) (*Store, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	data, mapped, release, err := mapFile(path, o.noMmap)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	s, err := openData(path, data, release)
	if err != nil {
		return nil, err
	}
	s.half, s.bf16 = o.half, o.bf16
	if fb, ok := s.be.(*fileBackend); ok {
		fb.mapped = mapped
	}
	if mapped {
		s.mapping = data
	}
	return s, nil
}

// openData parses a whole weights file held in data (mapped or read); release frees data.
func openData(path string, data []byte, release func() error) (*Store, error) {
	var be *fileBackend
	var err error
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")) || bytes.HasPrefix(data, []byte("PK\x05\x06")):
		be, err = parseTorchZip(data)
	case len(data) >= 8 && data[0] == 0x80 && binary.LittleEndian.Uint64(data) > uint64(len(data)):
		// A pickle's PROTO opcode, and no safetensors header could be that long: legacy torch.save.
		be, err = parseTorchLegacy(data)
	default:
		be, err = parseSafetensors(data)
		if err != nil && !strings.HasSuffix(path, ".safetensors") {
			err = fmt.Errorf("neither a PyTorch checkpoint (zip or pickle) nor safetensors: %w", err)
		}
	}
	if err != nil {
		release()
		return nil, fmt.Errorf("weights: %s: %w", path, err)
	}
	return newStore(path, be, release), nil
}
