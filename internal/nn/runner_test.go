package nn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// scaleRunner returns a Runner whose program computes s·x (through k chained Scale ops, each by
// s^(1/k) rounded: k=1 unless stated) for an input of any shape, counting the builds.
func scaleRunner(s float32, builds *atomic.Int32, opts ...RunnerOption) *Runner {
	return NewRunner("test", func(shapes ...tensor.Shape) (*Program, error) {
		if builds != nil {
			builds.Add(1)
		}
		if len(shapes) != 1 {
			return nil, fmt.Errorf("want 1 input, got %d", len(shapes))
		}
		g := gorgonia.NewGraph()
		x := gorgonia.NewTensor(g, tensor.Float32, len(shapes[0]), gorgonia.WithShape(shapes[0]...), gorgonia.WithName("x"))
		y, err := Scale(x, s)
		if err != nil {
			return nil, err
		}
		return Compile(g, []*gorgonia.Node{x}, []*gorgonia.Node{y})
	}, opts...)
}

func ramp(shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(i)
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
}

func TestRunnerRunOwnsOutputs(t *testing.T) {
	var builds atomic.Int32
	r := scaleRunner(2, &builds)
	defer r.Close()
	a, err := r.Run(context.Background(), ramp(2, 3))
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Run(context.Background(), ramp(2, 3))
	if err != nil {
		t.Fatal(err)
	}
	if &a[0].Float32s()[0] == &b[0].Float32s()[0] {
		t.Fatal("two Runs returned the same buffer; outputs must be the caller's")
	}
	for i, v := range a[0].Float32s() {
		if v != 2*float32(i) || b[0].Float32s()[i] != v {
			t.Fatalf("output %d: %v, %v; want %v", i, v, b[0].Float32s()[i], 2*float32(i))
		}
	}
	if _, err := r.Run(context.Background(), ramp(4)); err != nil {
		t.Fatal(err)
	}
	if n := builds.Load(); n != 2 {
		t.Errorf("%d builds for two shapes, want 2", n)
	}
}

// TestRunnerClosed: every call after Close returns ErrClosed, never a fault.
func TestRunnerClosed(t *testing.T) {
	released := 0
	r := scaleRunner(2, nil, WithRelease(func() error { released++; return nil }))
	if _, err := r.Run(context.Background(), ramp(3)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if released != 1 {
		t.Errorf("release called %d times, want 1", released)
	}
	if r.Cache().Len() != 0 {
		t.Errorf("%d programs still cached after Close", r.Cache().Len())
	}
	if _, err := r.Run(context.Background(), ramp(3)); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
	if _, err := r.Program(tensor.Shape{3}); !errors.Is(err, ErrClosed) {
		t.Errorf("Program after Close: %v, want ErrClosed", err)
	}
	called := false
	if err := r.Call(context.Background(), func(context.Context) error { called = true; return nil }); !errors.Is(err, ErrClosed) || called {
		t.Errorf("Call after Close: %v (f called: %v), want ErrClosed", err, called)
	}
	if !r.Closed() {
		t.Error("Closed is false after Close")
	}
}

// TestRunnerCloseWaits: Close during a call waits for it (the weights stay until it is done)
// and cancels its context, so the call returns ErrClosed.
func TestRunnerCloseWaits(t *testing.T) {
	var released atomic.Bool
	r := scaleRunner(2, nil, WithRelease(func() error { released.Store(true); return nil }))
	started := make(chan struct{})
	callErr := make(chan error, 1)
	go func() {
		callErr <- r.Call(context.Background(), func(ctx context.Context) error {
			close(started)
			<-ctx.Done() // a long forward checking its context between ops
			time.Sleep(20 * time.Millisecond)
			if released.Load() {
				return errors.New("weights released while the call was running")
			}
			return ctx.Err()
		})
	}()
	<-started
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !released.Load() {
		t.Error("Close returned before releasing")
	}
	if err := <-callErr; !errors.Is(err, ErrClosed) {
		t.Errorf("call interrupted by Close returned %v, want ErrClosed", err)
	}
}

// TestRunnerCloseDuringRunFunc: Close while a RunFunc is reading its outputs waits for it.
func TestRunnerCloseDuringRunFunc(t *testing.T) {
	r := scaleRunner(3, nil)
	reading := make(chan struct{})
	proceed := make(chan struct{})
	var sum float32
	runErr := make(chan error, 1)
	go func() {
		runErr <- r.RunFunc(context.Background(), func(outs []*tensor.Dense) error {
			close(reading)
			<-proceed
			for _, v := range outs[0].Float32s() {
				sum += v
			}
			return nil
		}, ramp(4))
	}()
	<-reading
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a call was reading its outputs")
	case <-time.After(50 * time.Millisecond):
	}
	close(proceed)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	if sum != 3*(0+1+2+3) {
		t.Errorf("sum of outputs %v, want 18", sum)
	}
}

// TestRunnerConcurrent: callers of one shape take turns, of different shapes run; every result
// is right (run with -race).
func TestRunnerConcurrent(t *testing.T) {
	var builds atomic.Int32
	r := scaleRunner(2, &builds)
	defer r.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 3 + g%2
			for range 20 {
				out, err := r.Run(context.Background(), ramp(n, 5))
				if err != nil {
					errs <- err
					return
				}
				for i, v := range out[0].Float32s() {
					if v != 2*float32(i) {
						errs <- fmt.Errorf("goroutine %d: output %d is %v, want %v", g, i, v, 2*float32(i))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := builds.Load(); n != 2 {
		t.Errorf("%d builds for two shapes, want 2 (each shape compiled once)", n)
	}
}

// TestRunnerConcurrentClose: Close racing with many calls: each call returns a right result or
// ErrClosed.
func TestRunnerConcurrentClose(t *testing.T) {
	r := scaleRunner(2, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				out, err := r.Run(context.Background(), ramp(64, 64+g))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				if v := out[0].Float32s()[7]; v != 14 {
					t.Errorf("output 7 is %v, want 14", v)
				}
			}
		}()
	}
	time.Sleep(time.Millisecond)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func TestRunnerBuildError(t *testing.T) {
	var builds atomic.Int32
	fail := true
	r := NewRunner("flaky", func(shapes ...tensor.Shape) (*Program, error) {
		builds.Add(1)
		if fail {
			return nil, errors.New("no such thing")
		}
		return scaleRunner(1, nil).build(shapes...)
	})
	defer r.Close()
	if _, err := r.Run(context.Background(), ramp(2)); err == nil {
		t.Fatal("no error from a failing build")
	} else {
		t.Log(err)
	}
	fail = false
	if _, err := r.Run(context.Background(), ramp(2)); err != nil {
		t.Fatalf("a failed build is cached: %v", err)
	}
	bad := NewRunner("wrong", func(shapes ...tensor.Shape) (*Program, error) {
		return scaleRunner(1, nil).build(tensor.Shape{1})
	})
	defer bad.Close()
	if _, err := bad.Run(context.Background(), ramp(2)); err == nil {
		t.Error("a program for another shape was accepted")
	} else {
		t.Log(err)
	}
	if _, err := bad.Run(context.Background(), nil); err == nil {
		t.Error("a nil input was accepted")
	}
}

// TestCacheLimit: one Cache shared by two Runners keeps programs up to its byte limit, least
// recently used dropped first, the last used always kept.
func TestCacheLimit(t *testing.T) {
	c := NewCache(0)
	var builds atomic.Int32
	a := scaleRunner(2, &builds, WithCache(c))
	b := scaleRunner(3, &builds, WithCache(c))
	defer a.Close()
	defer b.Close()
	run := func(r *Runner, n int) {
		t.Helper()
		if _, err := r.Run(context.Background(), ramp(n)); err != nil {
			t.Fatal(err)
		}
	}
	run(a, 256) // 1 KiB of buffers
	run(b, 256)
	if c.Len() != 1 || c.Bytes() != 1024 {
		t.Errorf("limit 0: %d programs, %d bytes; want 1, 1024", c.Len(), c.Bytes())
	}
	c.SetLimit(3100)
	run(a, 256)
	run(a, 512) // 2 KiB: a/256 + b/256 + a/512 > 3100, the oldest (b/256) goes
	if c.Len() != 2 || c.Bytes() != 3072 {
		t.Errorf("limit 3100: %d programs, %d bytes; want 2, 3072", c.Len(), c.Bytes())
	}
	n := builds.Load()
	run(a, 256)
	if builds.Load() != n {
		t.Error("a cached program was rebuilt")
	}
	c.SetLimit(0)
	if c.Len() != 1 {
		t.Errorf("after SetLimit(0): %d programs, want 1", c.Len())
	}
	other := NewCache(1 << 20)
	a.SetCache(other)
	run(a, 256)
	if other.Len() != 1 || c.Len() != 0 {
		t.Errorf("after SetCache: %d programs in the new cache, %d in the old; want 1, 0", other.Len(), c.Len())
	}
	p, err := b.Program(tensor.Shape{100})
	if err != nil {
		t.Fatal(err)
	}
	if p.BufferBytes() != 448 { // 100 floats, rounded up to 64 bytes
		t.Errorf("BufferBytes %d, want 448", p.BufferBytes())
	}
	// Compiled but not run: no bytes counted, at most MaxCachedPrograms kept.
	before := c.Bytes()
	for n := 1; n <= MaxCachedPrograms+10; n++ {
		if _, err := b.Program(tensor.Shape{n, 1000}); err != nil {
			t.Fatal(err)
		}
	}
	if c.Bytes() != before || c.Len() > MaxCachedPrograms {
		t.Errorf("after compiling %d programs: %d bytes (was %d), %d programs", MaxCachedPrograms+10, c.Bytes(), before, c.Len())
	}
}

// TestHugeShapes: shapes whose element count overflows an int are errors when the graph is
// built, not wrapped sizes.
func TestHugeShapes(t *testing.T) {
	r := scaleRunner(2, nil)
	defer r.Close()
	for _, s := range []tensor.Shape{{math.MaxInt32, math.MaxInt32, 4}, {maxElements, 8}, {maxElements/2 + 1, 2, 2}} {
		if _, err := r.Program(s); err == nil {
			t.Errorf("shape %v: no error", s)
		} else {
			t.Log(err)
		}
	}
}

func TestRunnerRelease(t *testing.T) {
	var builds atomic.Int32
	r := scaleRunner(2, &builds)
	defer r.Close()
	for range 2 {
		if _, err := r.Run(context.Background(), ramp(8)); err != nil {
			t.Fatal(err)
		}
		r.Release()
		if r.Cache().Len() != 0 || r.Cache().Bytes() != 0 {
			t.Errorf("after Release: %d programs, %d bytes", r.Cache().Len(), r.Cache().Bytes())
		}
	}
	if builds.Load() != 2 {
		t.Errorf("%d builds, want 2 (one after Release)", builds.Load())
	}
}
