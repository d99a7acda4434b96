package nn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"gorgonia.org/tensor"
)

// ErrClosed is returned (wrapped) by every call on a model after its Close. The model packages
// and the pipeline re-export it (clip.ErrClosed, unet.ErrClosed, vae.ErrClosed,
// pipeline.ErrClosed are this value), so errors.Is(err, pipeline.ErrClosed) works whichever
// component noticed.
var ErrClosed = errors.New("smallsd: closed")

// DefaultCacheLimit is the byte limit of the Cache a Runner makes for itself when given none:
// 1 GiB of program buffers (two 512×512 UNet programs, or one VAE decode program and change).
const DefaultCacheLimit int64 = 1 << 30

// BuildFunc builds and compiles a model's forward for inputs of the given shapes (in the order
// Runner.Run receives the inputs): typically a new gorgonia graph, the model's layers' Forward
// on its input nodes, and Compile. It must not keep the Program; the Runner caches it.
type BuildFunc func(shapes ...tensor.Shape) (*Program, error)

// Runner runs one model: it compiles a Program per input shape on first use (with the model's
// BuildFunc), keeps programs in a Cache bounded in bytes (least recently used dropped first),
// lets concurrent callers of one shape take turns (callers of different shapes run in
// parallel), and returns outputs the caller owns.
//
// Close makes every later call return ErrClosed, cancels the calls in flight (they return
// ErrClosed at their next op) and waits for them before releasing the model's resources
// (WithRelease), so weights are never unmapped under a running kernel. A Runner is safe for
// concurrent use; its methods never panic on a closed Runner.
//
// A new model needs only a BuildFunc and its weights:
//
//	r := nn.NewRunner("mymodel", func(shapes ...tensor.Shape) (*nn.Program, error) {
//		g := gorgonia.NewGraph()
//		x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(shapes[0]...), gorgonia.WithName("x"))
//		y, err := layer.Forward(x)
//		if err != nil {
//			return nil, err
//		}
//		return nn.Compile(g, []*gorgonia.Node{x}, []*gorgonia.Node{y})
//	}, nn.WithRelease(store.Close))
//	outs, err := r.Run(ctx, xValue) // outs[0] is the caller's
//	…
//	err = r.Close()
type Runner struct {
	name    string
	build   BuildFunc
	cache   *Cache
	release func() error

	mu       sync.Mutex
	inflight int
	idle     *sync.Cond // signalled when inflight drops to 0
	closed   bool
	closing  context.Context    // done once Close is called: cancels the calls in flight
	cancel   context.CancelFunc // cancels closing
	done     chan struct{}      // closed when Close has finished
	err      error              // Close's result
}

// RunnerOption configures NewRunner.
type RunnerOption func(*Runner)

// WithCache makes the Runner keep its programs in c, which may be shared by several Runners (the
// components of a pipeline), so one byte limit bounds them all.
func WithCache(c *Cache) RunnerOption { return func(r *Runner) { r.cache = c } }

// WithRelease gives Close a function to call once the calls in flight have finished, such as
// the Close of the weights store the model's tensors come from.
func WithRelease(f func() error) RunnerOption { return func(r *Runner) { r.release = f } }

// NewRunner returns a Runner for a model named name (used in errors) whose programs build
// makes. Without WithCache the Runner has a Cache of its own limited to DefaultCacheLimit.
func NewRunner(name string, build BuildFunc, opts ...RunnerOption) *Runner {
	r := &Runner{name: name, build: build, done: make(chan struct{})}
	r.closing, r.cancel = context.WithCancel(context.Background())
	r.idle = sync.NewCond(&r.mu)
	for _, o := range opts {
		o(r)
	}
	if r.cache == nil {
		r.cache = NewCache(DefaultCacheLimit)
	}
	return r
}

// Cache returns the Cache the Runner keeps its programs in.
func (r *Runner) Cache() *Cache { return r.cache }

// SetCache moves the Runner to cache c: its programs in the old cache are dropped, later ones
// are kept in c.
func (r *Runner) SetCache(c *Cache) {
	r.mu.Lock()
	old := r.cache
	r.cache = c
	r.mu.Unlock()
	if old != c {
		old.drop(r)
	}
}

// Call runs f as a call in flight: it returns an error wrapping ErrClosed if the Runner is
// closed, and otherwise f's error; Close waits for f to return. The context given to f is ctx,
// also cancelled when Close is called. Models use Call for work that reads their weights outside
// Run (one-off programs, such as those computing intermediate outputs for tests).
func (r *Runner) Call(ctx context.Context, f func(ctx context.Context) error) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.exit()
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(r.closing, func() { cancel(ErrClosed) })
	defer stop()
	err := f(cctx)
	if err != nil && context.Cause(cctx) == ErrClosed && ctx.Err() == nil {
		return fmt.Errorf("%s: %w", r.name, ErrClosed)
	}
	return err
}

// Run runs the program for the inputs' shapes (compiling it on first use) and returns copies of
// its outputs, which the caller owns. Concurrent calls with the same shapes take turns.
func (r *Runner) Run(ctx context.Context, inputs ...*tensor.Dense) ([]*tensor.Dense, error) {
	var res []*tensor.Dense
	err := r.RunFunc(ctx, func(outs []*tensor.Dense) error {
		res = make([]*tensor.Dense, len(outs))
		for i, o := range outs {
			res[i] = Clone(o)
		}
		return nil
	}, inputs...)
	return res, err
}

// RunFunc is Run without the copies: it calls use with the outputs, which live in the program's
// buffers and are valid only until use returns (copy what you keep). use runs while the
// program is held: it must not call the Runner (nor Close it).
func (r *Runner) RunFunc(ctx context.Context, use func(outs []*tensor.Dense) error, inputs ...*tensor.Dense) error {
	shapes := make([]tensor.Shape, len(inputs))
	for i, t := range inputs {
		if t == nil {
			return fmt.Errorf("%s: input %d is nil", r.name, i)
		}
		shapes[i] = t.Shape()
	}
	return r.Call(ctx, func(ctx context.Context) error {
		e, err := r.entry(shapes, true)
		if err != nil {
			return err
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		outs, err := e.prog.Run(ctx, inputs...)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		return use(outs)
	})
}

// Program returns the compiled program for inputs of the given shapes, compiling it if it is not
// cached (without allocating its buffers: that happens on its first Run). Use it to learn what a
// call will need (Program.BufferBytes, PeakBytes) before making it; do not Run it.
func (r *Runner) Program(shapes ...tensor.Shape) (*Program, error) {
	var p *Program
	err := r.Call(context.Background(), func(context.Context) error {
		e, err := r.entry(shapes, false)
		if err == nil {
			p = e.prog
		}
		return err
	})
	return p, err
}

// Release drops the Runner's compiled programs from its cache, so their buffers can be
// collected once no call uses them; later calls compile again. A pipeline releases a model
// whose stage is over, so stages do not hold memory at the same time.
func (r *Runner) Release() {
	r.mu.Lock()
	c := r.cache
	r.mu.Unlock()
	c.drop(r)
}

// Close makes later calls return ErrClosed, cancels the calls in flight, waits for them to
// return, drops the Runner's programs and calls the WithRelease function. Close is idempotent:
// later calls wait for the first to finish and return its result. Close must not be called from
// inside a call of the same Runner (a RunFunc use or a Call f), which it would wait for.
func (r *Runner) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		<-r.done
		return r.err
	}
	r.closed = true
	r.cancel()
	for r.inflight > 0 {
		r.idle.Wait()
	}
	cache := r.cache
	r.mu.Unlock()
	cache.drop(r)
	if r.release != nil {
		r.err = r.release()
	}
	close(r.done)
	return r.err
}

// Closed reports whether Close has been called.
func (r *Runner) Closed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

func (r *Runner) enter() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("%s: %w", r.name, ErrClosed)
	}
	r.inflight++
	return nil
}

func (r *Runner) exit() {
	r.mu.Lock()
	r.inflight--
	if r.inflight == 0 {
		r.idle.Broadcast()
	}
	r.mu.Unlock()
}

// entry returns the cache entry for shapes, compiled. The caller is a call in flight.
func (r *Runner) entry(shapes []tensor.Shape, run bool) (*entry, error) {
	r.mu.Lock()
	c := r.cache
	r.mu.Unlock()
	e := c.get(r, shapeKey(shapes))
	e.once.Do(func() {
		p, err := r.build(shapes...)
		if err == nil {
			err = checkInputs(p, shapes)
		}
		if err != nil {
			e.err = fmt.Errorf("%s: building for inputs %v: %w", r.name, shapes, err)
			return
		}
		e.prog = p
	})
	if e.err != nil {
		c.remove(e) // a later call may try again (the error may have been transient)
		return nil, e.err
	}
	c.used(e, run)
	return e, nil
}

func checkInputs(p *Program, shapes []tensor.Shape) error {
	if p == nil {
		return errors.New("the build function returned no program")
	}
	if p.NumInputs() != len(shapes) {
		return fmt.Errorf("the program takes %d inputs, %d given", p.NumInputs(), len(shapes))
	}
	for i, s := range shapes {
		if !p.InputShape(i).Eq(s) {
			return fmt.Errorf("the program's input %d has shape %v, given %v", i, p.InputShape(i), s)
		}
	}
	return nil
}

func shapeKey(shapes []tensor.Shape) string {
	var b strings.Builder
	for _, s := range shapes {
		for _, d := range s {
			fmt.Fprintf(&b, "%d,", d)
		}
		b.WriteByte(';')
	}
	return b.String()
}

// Clone copies a tensor's float32 data (a Program output, which lives in the Program's buffers)
// into a new tensor of the same shape.
func Clone(t *tensor.Dense) *tensor.Dense {
	data := make([]float32, t.Size())
	copy(data, t.Float32s())
	return tensor.New(tensor.WithShape(t.Shape().Clone()...), tensor.WithBacking(data))
}
