package unet

import (
	"context"
	"testing"

	"github.com/smallsd/smallsd/internal/closetest"
	"github.com/smallsd/smallsd/internal/golden"
	"gorgonia.org/tensor"
)

// TestLifecycleUseAfterClose: every call after Close returns ErrClosed.
func TestLifecycleUseAfterClose(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	text := dense(f.Must(t, "text.last_hidden_state"))
	sample := dense(f.Must(t, "unet.sq.sample"))
	ctx := context.Background()
	closetest.UseAfterClose(t, m.Close, ErrClosed,
		closetest.Call{Name: "Forward", Do: func() error { _, err := m.Forward(ctx, sample, 500, text); return err }},
		closetest.Call{Name: "ForwardTaps", Do: func() error {
			_, err := m.ForwardTaps(ctx, sample, 500, text, []string{"conv_in"})
			return err
		}})
}

// TestLifecycleCloseDuringForward: Close while Forwards run (it used to unmap the weights under
// the kernels) waits for them; each returns a result or ErrClosed.
func TestLifecycleCloseDuringForward(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	text := dense(f.Must(t, "text.last_hidden_state"))
	samples := []*tensor.Dense{dense(f.Must(t, "unet.sq.sample")), dense(f.Must(t, "unet.rect.sample"))}
	closetest.CloseDuringCalls(t, 4, m.Close, ErrClosed, func(g int) error {
		_, err := m.Forward(context.Background(), samples[g%2], 500, text)
		return err
	})
}
