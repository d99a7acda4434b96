package pipeline

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smallsd/smallsd/internal/benchutil"
	"github.com/smallsd/smallsd/internal/golden"
)

// procKB returns a "Key:   123 kB" value of a /proc file in kB, or -1.
func procKB(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// fullSizeLoaded loads the full-size small-sd pipeline (small-sd UNet, SD VAE, CLIP ViT-L/14
// text encoder, configs from testdata/configs) with the synthetic weights of
// testdata/SYNTHETIC.md from a model folder written once (syntheticModelDir), as a user loads a
// downloaded model: the weights files are memory-mapped. With half it loads the fp16 variant
// with half weights (as txt2img -fp16 does: WithVariant("fp16"), WithHalfWeights), with bf16
// the float32 files rounded to bf16 (WithPrecision(BF16)).
func fullSizeLoaded(tb testing.TB, half, bf16 bool) *Pipeline {
	dir := syntheticModelDir(tb, half)
	opts := []Option{WithoutSafetyChecker()}
	if os.Getenv("SMALLSD_BENCH_KEEP") != "" { // compare with the weights kept resident
		tb.Log("SMALLSD_BENCH_KEEP set: WithKeepMemory")
		opts = append(opts, WithKeepMemory())
	}
	switch {
	case bf16:
		opts = append(opts, WithPrecision(BF16))
	case half:
		opts = append(opts, WithVariant("fp16"), WithHalfWeights())
	}
	p, err := Load(dir, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// fullSizeTokenizerDir is the real CLIP vocabulary's folder when /work/shared/clip-tokenizer
// is present, else the tiny tokenizer's (the ids differ, the cost does not).
func fullSizeTokenizerDir(tb testing.TB) string {
	tokDir := filepath.Join(golden.Dir(), "..", "..", "shared", "clip-tokenizer")
	if _, err := os.Stat(filepath.Join(tokDir, "vocab.json")); err != nil {
		tb.Logf("real CLIP vocabulary not found at %s; using the tiny tokenizer", tokDir)
		tokDir = golden.Path("tiny-sd", "tokenizer")
	}
	return tokDir
}

// BenchmarkGenerateSmallSD512 makes one 512×512 image in 25 PNDM steps with classifier-free
// guidance, as txt2img does by default, with the full-size small-sd models on synthetic weights
// (the arithmetic is the real checkpoint's) loaded from a model folder as a user loads one
// (fullSizeLoaded: the weights are memory-mapped). It also logs each stage's peak RSS and what
// it is made of; SMALLSD_BENCH_KEEP=1 loads WithKeepMemory, for comparison. It reports seconds per image (everything, graph
// compilation included), per step (the UNet on batch 2 plus the scheduler), for the text
// encoder and the VAE decoder, and the process's peak RSS. Run it alone:
//
//	go test ./pipeline -run '^$' -bench 'GenerateSmallSD512$' -benchtime 1x -count 3 -timeout 2h
func BenchmarkGenerateSmallSD512(b *testing.B) { benchGenerate(b, false, false) }

// BenchmarkGenerateSmallSD512Half is BenchmarkGenerateSmallSD512 with half weights
// (WithHalfWeights): compare the peak RSS. Run it in a process of its own:
//
//	go test ./pipeline -run '^$' -bench 'GenerateSmallSD512Half$' -benchtime 1x -count 3 -timeout 2h
func BenchmarkGenerateSmallSD512Half(b *testing.B) { benchGenerate(b, true, false) }

// BenchmarkGenerateSmallSD512BF16 is BenchmarkGenerateSmallSD512 with WithPrecision(BF16): bf16
// weights, and bf16 matrix products where AVX512-BF16 pays. Run it in a process of its own:
//
//	go test ./pipeline -run '^$' -bench 'GenerateSmallSD512BF16$' -benchtime 1x -count 3 -timeout 2h
func BenchmarkGenerateSmallSD512BF16(b *testing.B) { benchGenerate(b, false, true) }

func benchGenerate(b *testing.B, half, bf16 bool) {
	benchRequest(b, half, bf16, func(*Pipeline) Request {
		return Request{Prompt: "a photograph of an astronaut riding a horse", Width: 512, Height: 512,
			Steps: 25, GuidanceScale: 7.5, Seed: 42}
	})
}

// benchRequest generates the request req makes for the full-size synthetic pipeline b.N times
// and reports the times, the cores used and the peak RSS.
func benchRequest(b *testing.B, half, bf16 bool, req func(*Pipeline) Request) {
	if testing.Short() {
		b.Skip("full-size model: skipped with -short")
	}
	// Weights take 2.9 GB as float32 (UNet 2.3, text encoder 0.5, VAE decoder 0.2); activations
	// at 512×512, mostly the VAE decoder's, add about 2 GB.
	const needKB = 6 << 20
	if avail := procKB("/proc/meminfo", "MemAvailable"); avail >= 0 && avail < needKB {
		b.Skipf("needs about %d GiB of free memory for the full-size synthetic models; %.1f GiB available",
			needKB>>20, float64(avail)/(1<<20))
	}
	rs := newRSSSampler("build")
	t0 := time.Now()
	p := fullSizeLoaded(b, half, bf16)
	defer p.Close()
	r := req(p)
	build := time.Since(t0)
	progress := r.Progress
	r.Progress = func(pr Progress) {
		switch pr.Step {
		case 0:
			rs.setStage("denoise")
		case pr.Total:
			rs.setStage("decode")
		}
		if progress != nil {
			progress(pr)
		}
	}
	var text, step, encode, decode, total time.Duration
	var steps int
	cpu0 := benchutil.CPUTime()
	b.ResetTimer()
	for range b.N {
		rs.setStage("text")
		res, err := p.Generate(context.Background(), r)
		if err != nil {
			b.Fatal(err)
		}
		t := res.Timings
		b.Logf("image: %.2f s (text %.3f s, denoise %.2f s, first step %.2f s, decode %.2f s)", t.Total.Seconds(),
			t.Text.Seconds(), t.Denoise.Seconds(), t.Steps[0].Seconds(), t.Decode.Seconds())
		text += t.Text
		encode += t.Encode
		decode += t.Decode
		total += t.Total
		step += t.Denoise
		steps += len(t.Steps)
	}
	b.StopTimer()
	b.Logf("FreeOSMemory between steps took %.3f s in all", float64(p.stepFree.Load())/1e9)
	b.Logf("peak RSS per stage (the largest sample of each):\n%s", rs.finish())
	cpu := benchutil.CPUTime() - cpu0
	n := float64(b.N)
	b.ReportMetric(total.Seconds()/n, "s/image")
	b.ReportMetric(step.Seconds()/float64(steps), "s/step")
	b.ReportMetric(text.Seconds()/n, "s-text/image")
	if encode > 0 {
		b.ReportMetric(encode.Seconds()/n, "s-encode/image")
	}
	b.ReportMetric(decode.Seconds()/n, "s-decode/image")
	b.ReportMetric(build.Seconds(), "s-build")
	// CPU seconds per wall second show how much of the 2 cores the run got on a shared machine.
	b.ReportMetric(cpu.Seconds()/total.Seconds(), "cores-used")
	gflop := p.unet.Config().FLOPs(2, 64, 64, 77) / 1e9 // one UNet call with guidance
	b.ReportMetric(gflop/(step.Seconds()/float64(steps)), "UNet-GFLOP/s")
	if hwm := procKB("/proc/self/status", "VmHWM"); hwm > 0 {
		b.ReportMetric(float64(hwm)/(1<<20), "GiB-peak-RSS")
	}
	b.ReportMetric(0, "ns/op") // the time is in s/image
}
