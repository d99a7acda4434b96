package vae

import (
	"fmt"

	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/weights"
)

// part is what the Decoder and the Encoder share: their config, the runner their calls go
// through and the weights file LoadDecoder or LoadEncoder opened.
type part struct {
	cfg    Config
	store  *weights.Store // closed by Close when Load opened it
	runner *nn.Runner     // programs per input size, batch 1
}

// Config returns the model's config.
func (p *part) Config() Config { return p.cfg }

// Runner returns the runner the model's calls go through (for sharing a cache with other
// models, as the pipeline does).
func (p *part) Runner() *nn.Runner { return p.runner }

// Close waits for the calls in flight (cancelling them: they return ErrClosed), then drops the
// compiled programs and closes the weights file LoadDecoder or LoadEncoder opened. Every later
// call returns ErrClosed; Close is idempotent.
func (p *part) Close() error {
	if err := p.runner.Close(); err != nil {
		return err
	}
	if p.store != nil {
		return p.store.Close()
	}
	return nil
}

// ReleaseWeightPages takes the pages of the weights file the model mapped (when made by Load)
// out of the process's resident memory until it next reads them (weights.Store.ReleasePages):
// for a model that is idle for a while. It stays usable; its next call faults the pages back
// in. It returns the bytes advised, 0 when the weights are not a mapped file of its own.
func (p *part) ReleaseWeightPages() int64 {
	if p.store == nil {
		return 0
	}
	return p.store.ReleasePages()
}

// SetCacheLimit bounds the memory of the compiled programs kept for reuse (one per input size,
// each holding buffers for its intermediates: about 650 MiB for a 64×64 latent of SD's VAE
// decoder): the least recently used are dropped while the total exceeds bytes, but the last one
// used is always kept. The default is DefaultCacheLimit; ≤ 0 keeps only the last one.
func (p *part) SetCacheLimit(bytes int64) { p.runner.Cache().SetLimit(bytes) }

func (p *part) keep(s *weights.Store) { p.store = s }

// load reads dir/config.json and the weights in dir (a model's vae folder) and builds a model
// with build. The weights file stays open (memory-mapped) until the model's Close.
func load[M interface{ keep(*weights.Store) }](dir string, opts []weights.Option, build func(Config, weights.View) (M, error)) (M, error) {
	var zero M
	cfg, err := LoadConfig(dir)
	if err != nil {
		return zero, err
	}
	s, err := weights.Open(dir, opts...)
	if err != nil {
		return zero, fmt.Errorf("vae: %w", err)
	}
	m, err := build(cfg, s.View())
	if err != nil {
		s.Close()
		return zero, err
	}
	m.keep(s)
	return m, nil
}
