package vae

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/smallsd/smallsd/internal/nn"
	"gorgonia.org/tensor"
)

// DefaultCacheLimit is the default budget of SetCacheLimit.
const DefaultCacheLimit = 1 << 30

// programs is the cache of compiled programs, one per input size h×w (batch 1), that the
// Decoder and the Encoder each keep: least recently used programs are dropped while the
// buffers of all exceed the limit, the last one used always kept.
type programs struct {
	what string // "decoder" or "encoder", for errors

	mu     sync.Mutex
	closed bool
	progs  map[[2]int]*compiled
	tick   int64 // use counter for least-recently-used eviction
	limit  int64
}

func newPrograms(what string) *programs {
	return &programs{what: what, progs: map[[2]int]*compiled{}, limit: DefaultCacheLimit}
}

// compiled is one cached program; mu serialises Runs and the copying of their results.
type compiled struct {
	once sync.Once
	err  error
	mu   sync.Mutex
	prog *nn.Program

	bytes, used int64 // guarded by programs.mu: buffer size once compiled, last use
}

// get returns the program for size h×w, compiling it with build on first use.
func (c *programs) get(h, w int, build func() (*nn.Program, error)) (*compiled, error) {
	key := [2]int{h, w}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("vae: %s is closed", c.what)
	}
	p := c.progs[key]
	if p == nil {
		p = &compiled{}
		c.progs[key] = p
	}
	c.mu.Unlock()
	p.once.Do(func() {
		var err error
		if p.prog, err = build(); err != nil {
			p.err = fmt.Errorf("vae: building the %s for size %d×%d: %w", c.what, h, w, err)
		}
	})
	if p.err != nil {
		return nil, p.err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick++
	p.used, p.bytes = c.tick, p.prog.BufferBytes()
	c.evict(p)
	return p, nil
}

// setLimit changes the budget and evicts down to it, keeping the last program used.
func (c *programs) setLimit(bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit = bytes
	var last *compiled
	for _, p := range c.progs {
		if last == nil || p.used > last.used {
			last = p
		}
	}
	c.evict(last)
}

// close drops every program; it reports whether the cache was already closed.
func (c *programs) close() (already bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	already, c.closed, c.progs = c.closed, true, nil
	return already
}

// evict drops least recently used programs other than keep while the cache is over its limit.
// The caller holds c.mu. A dropped program still running finishes; the GC frees it afterwards.
func (c *programs) evict(keep *compiled) {
	for {
		var total int64
		var oldKey [2]int
		var old *compiled
		for k, p := range c.progs {
			total += p.bytes
			if p != keep && p.bytes > 0 && (old == nil || p.used < old.used) {
				oldKey, old = k, p
			}
		}
		if total <= c.limit || old == nil {
			return
		}
		delete(c.progs, oldKey)
	}
}

// run runs the program on x and copies its outputs into dst, in order (each dst[i] is filled
// from the start of output i).
func (p *compiled) run(ctx context.Context, x *tensor.Dense, dst ...[]float32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	res, err := p.prog.Run(ctx, x)
	if err != nil {
		return err
	}
	if len(res) < len(dst) {
		return errors.New("vae: program has fewer outputs than expected")
	}
	for i, d := range dst {
		copy(d, res[i].Float32s()[:len(d)])
	}
	return nil
}
