package pipeline

import (
	"context"
	"math/rand"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"github.com/smallsd/smallsd/unet"
	"github.com/smallsd/smallsd/weights"
)

func TestZZHeapProfUNet(t *testing.T) {
	if os.Getenv("ZZ_HEAPPROF") == "" {
		t.Skip()
	}
	runtime.MemProfileRate = 64 << 10
	dir := syntheticModelDir(t, true)
	var opts []weights.Option
	if os.Getenv("ZZ_HALF") != "" {
		opts = append(opts, weights.WithVariant("fp16"), weights.WithHalf())
	}
	m, err := unet.Load(dir+"/unet", opts...)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	sample, text := randDense(rng, 2, 4, 64, 64), randDense(rng, 2, 77, 768)
	rs := newRSSSampler("fwd1")
	if _, err := m.Forward(context.Background(), sample, 981, text); err != nil {
		t.Fatal(err)
	}
	rs.setStage("fwd2")
	if _, err := m.Forward(context.Background(), sample, 981, text); err != nil {
		t.Fatal(err)
	}
	t.Log(rs.finish())
	bb, err := m.BufferBytes(sample.Shape(), text.Shape())
	t.Logf("BufferBytes %d %v", bb, err)
	runtime.GC()
	f, _ := os.Create("/tmp/mem-heap.prof")
	pprof.Lookup("heap").WriteTo(f, 0)
	f.Close()
	runtime.KeepAlive(m)
}

func TestZZHeapProfPipeline(t *testing.T) {
	if os.Getenv("ZZ_PIPEPROF") == "" {
		t.Skip()
	}
	runtime.MemProfileRate = 64 << 10
	p := fullSizeLoaded(t, true, false)
	defer p.Close()
	rs := newRSSSampler("text")
	_, err := p.Generate(context.Background(), Request{Prompt: "x", Width: 512, Height: 512, Steps: 2, Seed: 1,
		Progress: func(pr Progress) {
			if pr.Step == 0 {
				rs.setStage("denoise")
			}
			if pr.Step == 1 {
				runtime.GC()
				f, _ := os.Create("/tmp/mem-pipe-heap.prof")
				pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
			if pr.Step == pr.Total {
				rs.setStage("decode")
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rs.finish())
}
