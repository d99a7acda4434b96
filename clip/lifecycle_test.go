package clip

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// TestLifecycleUseAfterClose: every call after Close returns ErrClosed (it used to fault on
// the unmapped weights).
func TestLifecycleUseAfterClose(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	ids := rows(f.Must(t, "text.input_ids"))
	if _, err := m.Encode(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.Encode(context.Background(), ids); !errors.Is(err, ErrClosed) {
		t.Errorf("Encode after Close: %v, want ErrClosed", err)
	}
	if _, _, err := m.EncodePooled(context.Background(), ids); !errors.Is(err, ErrClosed) {
		t.Errorf("EncodePooled after Close: %v, want ErrClosed", err)
	}
	if _, err := m.ForwardTaps(context.Background(), ids, []string{"embeddings"}); !errors.Is(err, ErrClosed) {
		t.Errorf("ForwardTaps after Close: %v, want ErrClosed", err)
	}
}

// TestLifecycleCloseDuringEncode: Close while Encodes run waits for them; each returns a result
// or ErrClosed.
func TestLifecycleCloseDuringEncode(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	ids := rows(f.Must(t, "text.input_ids"))
	var wg sync.WaitGroup
	started := make(chan struct{}, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if i == 0 {
					started <- struct{}{}
				}
				if _, err := m.Encode(context.Background(), ids); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("Encode racing with Close: %v, want a result or ErrClosed", err)
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
