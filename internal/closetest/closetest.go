// Package closetest holds the lifecycle checks every model package shares (clip, unet, vae,
// TAESD, safety): calls after Close return ErrClosed, and Close while calls run waits for them,
// each call ending with a result or ErrClosed, never a fault. It is for tests.
package closetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// Call is one method of a model, named for the test's messages.
type Call struct {
	Name string
	Do   func() error
}

// UseAfterClose runs the first call once (it must succeed, so the model works and the
// arguments are good), closes the model twice (Close is idempotent), and checks that every call
// then returns an error wrapping errClosed.
func UseAfterClose(tb testing.TB, closeModel func() error, errClosed error, calls ...Call) {
	tb.Helper()
	if err := calls[0].Do(); err != nil {
		tb.Fatalf("%s before Close: %v", calls[0].Name, err)
	}
	if err := closeModel(); err != nil {
		tb.Fatal(err)
	}
	if err := closeModel(); err != nil {
		tb.Fatalf("second Close: %v", err)
	}
	for _, c := range calls {
		if err := c.Do(); !errors.Is(err, errClosed) {
			tb.Errorf("%s after Close: %v, want %v", c.Name, err, errClosed)
		}
	}
}

// CloseDuringCalls starts n goroutines, goroutine g calling call(g) in a loop until it returns
// an error, and closes the model once the first call has completed (so the programs are compiled
// and the next calls are in flight). Close must wait for the calls in flight (a Close that freed
// the weights under a running kernel faults the test binary); every goroutine must end with an
// error wrapping errClosed. It logs how many calls completed.
func CloseDuringCalls(tb testing.TB, n int, closeModel func() error, errClosed error, call func(g int) error) {
	tb.Helper()
	var wg sync.WaitGroup
	var done atomic.Int64
	var once sync.Once
	running := make(chan struct{})
	errs := make(chan error, n)
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer once.Do(func() { close(running) }) // a goroutine that ends early must not hang the test
			for {
				if err := call(g); err != nil {
					errs <- err
					return
				}
				done.Add(1)
				once.Do(func() { close(running) })
			}
		}()
	}
	<-running
	if err := closeModel(); err != nil {
		tb.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, errClosed) {
			tb.Errorf("call racing with Close: %v, want a result or %v", err, errClosed)
		}
	}
	tb.Logf("%d goroutines: %d calls completed, then Close; every goroutine's next call returned %v", n, done.Load(), errClosed)
}
