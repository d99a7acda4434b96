package vae

import (
	"context"
	"testing"

	"github.com/smallsd/smallsd/internal/closetest"
	"github.com/smallsd/smallsd/internal/golden"
	"gorgonia.org/tensor"
)

// zeros is an N×C×H×W tensor of zeros.
func zeros(n, c, h, w int) *tensor.Dense {
	return tensor.New(tensor.WithShape(n, c, h, w), tensor.WithBacking(make([]float32, n*c*h*w)))
}

// TestLifecycleUseAfterClose: every call of the decoder, the encoder and TAESD after Close
// returns ErrClosed.
func TestLifecycleUseAfterClose(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	ctx := context.Background()
	z := dense(f.Must(t, "vae.sq.latents"))
	t.Run("Decoder", func(t *testing.T) {
		d := loadTiny(t, "tiny-sd")
		closetest.UseAfterClose(t, d.Close, ErrClosed,
			closetest.Call{Name: "Decode", Do: func() error { _, err := d.Decode(ctx, z); return err }},
			closetest.Call{Name: "DecodeTiled", Do: func() error {
				_, err := d.DecodeTiled(ctx, z, TileOptions{TileLatent: 2})
				return err
			}},
			closetest.Call{Name: "ForwardTaps", Do: func() error { _, err := d.ForwardTaps(ctx, z, []string{"decoder"}); return err }},
			closetest.Call{Name: "PeakBytes", Do: func() error { _, err := d.PeakBytes(4, 4); return err }})
	})
	t.Run("Encoder", func(t *testing.T) {
		e := loadTinyEncoder(t, "tiny-sd")
		x := zeros(1, 3, 16, 16)
		closetest.UseAfterClose(t, e.Close, ErrClosed,
			closetest.Call{Name: "Encode", Do: func() error { _, err := e.Encode(ctx, x); return err }},
			closetest.Call{Name: "PeakBytes", Do: func() error { _, err := e.PeakBytes(16, 16); return err }})
	})
	t.Run("TAESD", func(t *testing.T) {
		m := loadTinyTAESD(t)
		closetest.UseAfterClose(t, m.Close, ErrClosed,
			closetest.Call{Name: "Decode", Do: func() error { _, err := m.Decode(ctx, zeros(1, 4, 2, 2)); return err }},
			closetest.Call{Name: "Encode", Do: func() error { _, err := m.Encode(ctx, zeros(1, 3, 16, 16)); return err }},
			closetest.Call{Name: "PeakBytes", Do: func() error { _, err := m.PeakBytes(2, 2); return err }})
	})
}

// TestLifecycleCloseDuringDecode: Close while decodes and encodes run (it used to unmap the
// weights under the kernels) waits for them; each returns a result or ErrClosed.
func TestLifecycleCloseDuringDecode(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	ctx := context.Background()
	zs := []*tensor.Dense{dense(f.Must(t, "vae.sq.latents")), dense(f.Must(t, "vae.rect.latents"))}
	t.Run("Decoder", func(t *testing.T) {
		d := loadTiny(t, "tiny-sd")
		closetest.CloseDuringCalls(t, 4, d.Close, ErrClosed, func(g int) error {
			_, err := d.Decode(ctx, zs[g%2])
			return err
		})
	})
	t.Run("Encoder", func(t *testing.T) {
		e := loadTinyEncoder(t, "tiny-sd")
		xs := []*tensor.Dense{zeros(1, 3, 16, 16), zeros(1, 3, 16, 24)}
		closetest.CloseDuringCalls(t, 4, e.Close, ErrClosed, func(g int) error {
			_, err := e.Encode(ctx, xs[g%2])
			return err
		})
	})
	t.Run("TAESD", func(t *testing.T) {
		m := loadTinyTAESD(t)
		x := zeros(1, 3, 16, 16)
		closetest.CloseDuringCalls(t, 4, m.Close, ErrClosed, func(g int) error {
			var err error
			if g%2 == 0 {
				_, err = m.Decode(ctx, zs[g/2%2])
			} else {
				_, err = m.Encode(ctx, x)
			}
			return err
		})
	})
}
