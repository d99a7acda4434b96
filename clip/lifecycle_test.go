package clip

import (
	"context"
	"testing"

	"github.com/smallsd/smallsd/internal/closetest"
	"github.com/smallsd/smallsd/internal/golden"
)

// TestLifecycleUseAfterClose: every call after Close returns ErrClosed (it used to fault on
// the unmapped weights).
func TestLifecycleUseAfterClose(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	ids := rows(f.Must(t, "text.input_ids"))
	ctx := context.Background()
	closetest.UseAfterClose(t, m.Close, ErrClosed,
		closetest.Call{Name: "Encode", Do: func() error { _, err := m.Encode(ctx, ids); return err }},
		closetest.Call{Name: "EncodePooled", Do: func() error { _, _, err := m.EncodePooled(ctx, ids); return err }},
		closetest.Call{Name: "ForwardTaps", Do: func() error { _, err := m.ForwardTaps(ctx, ids, []string{"embeddings"}); return err }})
}

// TestLifecycleCloseDuringEncode: Close while Encodes run waits for them; each returns a result
// or ErrClosed.
func TestLifecycleCloseDuringEncode(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	ids := rows(f.Must(t, "text.input_ids"))
	closetest.CloseDuringCalls(t, 4, m.Close, ErrClosed, func(int) error {
		_, err := m.Encode(context.Background(), ids)
		return err
	})
}
