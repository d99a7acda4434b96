package benchutil

import (
	"errors"
	"runtime"
	"testing"
)

func TestCPUSeconds(t *testing.T) {
	c0 := CPUSeconds()
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i & 3
	}
	runtime.KeepAlive(x)
	c1 := CPUSeconds()
	if runtime.GOOS != "windows" && runtime.GOOS != "plan9" && !(c1 > c0) {
		t.Errorf("CPUSeconds did not advance over a busy loop: %v then %v", c0, c1)
	}
	t.Logf("busy loop: %.4f CPU-s", c1-c0)
}

func BenchmarkAlternate(b *testing.B) {
	var runs [2]int
	Alternate(b, []string{"a", "b"}, "run", func(f int) error {
		runs[f]++
		if runs[f] > b.N+1 {
			return errors.New("ran too often")
		}
		return nil
	})
	if runs[0] != b.N+1 || runs[1] != b.N+1 {
		b.Fatalf("runs %v, want %d each (b.N and one untimed)", runs, b.N+1)
	}
}
