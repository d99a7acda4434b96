package unet

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// TestLifecycleUseAfterClose: every call after Close returns ErrClosed.
func TestLifecycleUseAfterClose(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	text := dense(f.Must(t, "text.last_hidden_state"))
	sample := dense(f.Must(t, "unet.sq.sample"))
	if _, err := m.Forward(context.Background(), sample, 500, text); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.Forward(context.Background(), sample, 500, text); !errors.Is(err, ErrClosed) {
		t.Errorf("Forward after Close: %v, want ErrClosed", err)
	}
	if _, err := m.ForwardTaps(context.Background(), sample, 500, text, []string{"conv_in"}); !errors.Is(err, ErrClosed) {
		t.Errorf("ForwardTaps after Close: %v, want ErrClosed", err)
	}
}

// TestLifecycleCloseDuringForward: Close while Forwards run (it used to unmap the weights under
// the kernels) waits for them; each returns a result or ErrClosed.
func TestLifecycleCloseDuringForward(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	text := dense(f.Must(t, "text.last_hidden_state"))
	sq, rect := dense(f.Must(t, "unet.sq.sample")), dense(f.Must(t, "unet.rect.sample"))
	var wg sync.WaitGroup
	started := make(chan struct{}, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := sq
			if g%2 == 1 {
				s = rect
			}
			for i := 0; ; i++ {
				if i == 0 {
					started <- struct{}{}
				}
				if _, err := m.Forward(context.Background(), s, 500, text); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("Forward racing with Close: %v, want a result or ErrClosed", err)
					}
					return
				}
			}
		}()
	}
	for range 4 {
		<-started
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}
