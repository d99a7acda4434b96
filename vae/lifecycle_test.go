package vae

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
	d := loadTiny(t, "tiny-sd")
	z := dense(f.Must(t, "vae.sq.latents"))
	if _, err := d.Decode(context.Background(), z); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := d.Decode(context.Background(), z); !errors.Is(err, ErrClosed) {
		t.Errorf("Decode after Close: %v, want ErrClosed", err)
	}
	if _, err := d.DecodeTiled(context.Background(), z, TileOptions{TileLatent: 2}); !errors.Is(err, ErrClosed) {
		t.Errorf("DecodeTiled after Close: %v, want ErrClosed", err)
	}
	if _, err := d.ForwardTaps(context.Background(), z, []string{"decoder"}); !errors.Is(err, ErrClosed) {
		t.Errorf("ForwardTaps after Close: %v, want ErrClosed", err)
	}
	if _, err := d.PeakBytes(4, 4); !errors.Is(err, ErrClosed) {
		t.Errorf("PeakBytes after Close: %v, want ErrClosed", err)
	}
}

// TestLifecycleCloseDuringDecode: Close while Decodes run waits for them; each returns a result
// or ErrClosed.
func TestLifecycleCloseDuringDecode(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	d := loadTiny(t, "tiny-sd")
	zs := []string{"vae.sq.latents", "vae.rect.latents"}
	var wg sync.WaitGroup
	started := make(chan struct{}, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			z := dense(f.Must(t, zs[g%2]))
			for i := 0; ; i++ {
				if i == 0 {
					started <- struct{}{}
				}
				if _, err := d.Decode(context.Background(), z); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("Decode racing with Close: %v, want a result or ErrClosed", err)
					}
					return
				}
			}
		}()
	}
	for range 4 {
		<-started
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}
