package pipeline

import (
	"context"
	"errors"
	"image"
	"math"
	"math/bits"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallsd/smallsd/internal/golden"
)

// huge is 2^62 on 64-bit platforms (2^30 on 32-bit ones), 2^40 a little less huge.
var (
	huge  = 1 << (bits.UintSize - 2)
	huge2 = 1 << min(40, bits.UintSize-2)
)

// TestLifecycleRequestLimits: each request that used to crash the process (out of memory, an
// index or makeslice panic, a panic in torchrand) or silently give a black image is an error
// naming the field, before any work.
func TestLifecycleRequestLimits(t *testing.T) {
	p := testPipeline(t)
	cases := []struct {
		req   Request
		field string
	}{
		{Request{Width: 16384, Height: 16384}, "Width"},
		{Request{Width: 512, Height: 16384}, "Height"},
		{Request{Width: huge2, Height: huge2}, "Width"},
		{Request{Width: huge}, "Width"},
		{Request{Height: huge}, "Height"},
		{Request{NumImages: huge2}, "NumImages"},
		{Request{NumImages: MaxNumImages + 1}, "NumImages"},
		{Request{Steps: MaxSteps + 1}, "Steps"},
		{Request{Steps: huge}, "Steps"},
		{Request{GuidanceScale: 1e30}, "GuidanceScale"},
		{Request{GuidanceScale: -1e30}, "GuidanceScale"},
		{Request{GuidanceScale: math.NaN()}, "GuidanceScale"},
		{Request{GuidanceScale: math.Inf(-1)}, "GuidanceScale"},
		{Request{GuidanceScale: math.Inf(1)}, "GuidanceScale"},
		{Request{Prompt: strings.Repeat("a cat ", MaxPromptBytes/6+1)}, "Prompt"},
		{Request{NegativePrompt: strings.Repeat("x", MaxPromptBytes+1)}, "NegativePrompt"},
		{Request{Prompt: strings.Repeat("x", 100<<20)}, "Prompt"}, // 100 MB, refused before tokenising
		{Request{Init: image.NewNRGBA(image.Rect(0, 0, 8, MaxSide+8)), Strength: 0.5}, "Init"},
	}
	for _, c := range cases {
		called := false
		c.req.Progress = func(Progress) { called = true }
		res, err := p.Generate(context.Background(), c.req)
		if err == nil || res != nil {
			t.Errorf("%s: no error", c.field)
			continue
		}
		if !strings.Contains(err.Error(), "Request."+c.field+" ") {
			t.Errorf("error %q does not name Request.%s", err, c.field)
		}
		if called {
			t.Errorf("%s: progress reported for a bad request", c.field)
		}
		t.Logf("%s: %v", c.field, err)
	}
}

// TestLifecycleLongPrompt: a 1 MB prompt is tokenised and cut, not refused.
func TestLifecycleLongPrompt(t *testing.T) {
	p := testPipeline(t)
	start := time.Now()
	res, err := p.Generate(context.Background(), Request{Prompt: strings.Repeat("a photo of a cat ", 1<<20/17), Steps: 1,
		Width: 64, Height: 64, GuidanceScale: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("1 MB prompt: %v", time.Since(start))
	if len(res.Images) != 1 {
		t.Errorf("%d images", len(res.Images))
	}
}

// TestLifecycleMemoryBudget: a request whose buffers exceed the budget is an error saying what
// it needs and what the budget is; within it, it runs.
func TestLifecycleMemoryBudget(t *testing.T) {
	if b := DefaultMemoryBudget(); b < 1<<30 {
		t.Errorf("DefaultMemoryBudget %d is less than 1 GiB", b)
	} else {
		t.Logf("DefaultMemoryBudget on this machine: %s", gib(b))
	}
	p, err := Load(golden.Path("tiny-sd"), WithMemoryBudget(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.MemoryBudget() != 4<<20 {
		t.Errorf("MemoryBudget %d, want %d", p.MemoryBudget(), 4<<20)
	}
	if _, err := p.Generate(context.Background(), Request{Steps: 1, Width: 64, Height: 64}); err != nil {
		t.Fatalf("64×64 within a 4 MiB budget: %v", err)
	}
	called := false
	_, err = p.Generate(context.Background(), Request{Steps: 1, Width: 1024, Height: 1024, Progress: func(Progress) { called = true }})
	if err == nil {
		t.Fatal("1024×1024 in a 4 MiB budget: no error")
	}
	t.Log(err)
	for _, want := range []string{"needs", "budget of 4 MiB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if called {
		t.Error("denoising started for a request over the budget")
	}
	if p.cache.Bytes() > p.MemoryBudget() {
		t.Errorf("programs hold %d bytes, more than the budget %d", p.cache.Bytes(), p.MemoryBudget())
	}
}

// TestLifecycleCloseInProgress: Close from inside a Progress callback returns (no deadlock),
// and Generate returns ErrClosed at the next step boundary.
func TestLifecycleCloseInProgress(t *testing.T) {
	p, err := Load(golden.Path("tiny-sd"))
	if err != nil {
		t.Fatal(err)
	}
	last := -1
	closed := make(chan error, 1)
	type result struct {
		res *Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := p.Generate(context.Background(), Request{Steps: 6, Width: 64, Height: 64, Progress: func(pr Progress) {
			last = pr.Step
			if pr.Step == 2 {
				closed <- p.Close()
			}
		}})
		done <- result{res, err}
	}()
	var res *Result
	select {
	case r := <-done:
		res, err = r.res, r.err
	case <-time.After(2 * time.Minute):
		t.Fatal("Generate with Close in its Progress did not return within 2 minutes: deadlock")
	}
	if !errors.Is(err, ErrClosed) || res != nil {
		t.Fatalf("Generate closed in its Progress = %v, %v; want ErrClosed", res, err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close in Progress: %v", err)
	}
	if last != 2 {
		t.Errorf("last progress step %d after Close at step 2", last)
	}
	if _, err := p.Generate(context.Background(), Request{Steps: 1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Generate after Close: %v, want ErrClosed", err)
	}
}

// TestLifecycleCloseDuringGenerate: Close from another goroutine while generations run waits
// for the model calls in flight; each Generate returns a result or ErrClosed, never a fault.
func TestLifecycleCloseDuringGenerate(t *testing.T) {
	p, err := Load(golden.Path("tiny-sd"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	started := make(chan struct{}, 3)
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			_, err := p.Generate(context.Background(), Request{Steps: 50, Width: 64 + 8*g, Height: 64, Seed: int64(g),
				Progress: func(Progress) { once.Do(func() { started <- struct{}{} }) }})
			if !errors.Is(err, ErrClosed) {
				t.Errorf("Generate racing with Close: %v, want ErrClosed", err)
			}
		}()
	}
	for range 3 {
		<-started
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
