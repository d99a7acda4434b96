// Command txt2img makes images from a text prompt with a Stable Diffusion 1.x model, on the CPU.
//
//	txt2img -prompt "a photograph of an astronaut riding a horse" -out astronaut.png
//
// The model (-model) is a folder in diffusers layout or a Hugging Face Hub repository id,
// by default OFA-Sys/small-stable-diffusion-v0, downloaded on first use into the Hub cache
// that Python's huggingface_hub uses (HF_HOME, HF_HUB_CACHE, HF_TOKEN and HF_HUB_OFFLINE are
// honoured). A seed reproduces the image diffusers' StableDiffusionPipeline makes on a CPU in
// float32 with the same settings.
//
// Each image is written as a PNG holding the generation parameters in a "parameters" text chunk,
// in the form AUTOMATIC1111's web UI writes (and ComfyUI, InvokeAI and civitai read):
//
//	a photograph of an astronaut riding a horse
//	Negative prompt: blurry
//	Steps: 25, Sampler: PNDM, CFG scale: 7.5, Seed: 42, Size: 512x512, Model: small-stable-diffusion-v0
//
// With -n 2 or more the images are numbered: -out img.png writes img-1.png, img-2.png, ….
// With -fp16 the model's fp16 weight files are loaded where it has them, and the weight matrices
// of all Linear and Conv2d layers stay in half precision in memory (pipeline.WithVariant("fp16")
// and pipeline.WithHalfWeights): about half the weight memory, and the images of the widened fp16
// files up to float32 rounding (float32 files are rounded to fp16 at load, which moves images
// slightly).
// When the model has a safety checker (safety_checker/ and feature_extractor/, as small-sd has),
// every image is checked as diffusers does; a flagged image is written black and a line
// containing "NSFW" goes to standard error (the exit status stays 0). -safety=false turns the
// checker off (and skips downloading it), with a warning.
// Progress goes to standard error: a progress bar with the rate and the time left on a
// terminal, plain lines otherwise. Interrupting (Ctrl-C) stops within one UNet call.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/smallsd/smallsd/hub"
	"github.com/smallsd/smallsd/pipeline"
	"github.com/smallsd/smallsd/pipeline/pngmeta"
	"github.com/smallsd/smallsd/scheduler"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "txt2img:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	model, prompt, negative, scheduler, out string
	seed                                    int64
	steps, width, height, n                 int
	guidance                                float64
	fp16, safety                            bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("txt2img", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: txt2img -prompt TEXT [flags]\n\nMakes images with a Stable Diffusion 1.x model. Flags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.model, "model", pipeline.DefaultModel, "model `folder` (diffusers layout) or Hugging Face Hub repo id")
	fs.StringVar(&o.prompt, "prompt", "", "what the image should show (required)")
	fs.StringVar(&o.negative, "negative", "", "what the image should not show (negative prompt)")
	fs.Int64Var(&o.seed, "seed", -1, "random seed (torch-compatible); negative picks one at random, printed")
	fs.IntVar(&o.steps, "steps", pipeline.DefaultSteps, "inference steps")
	fs.Float64Var(&o.guidance, "guidance", pipeline.DefaultGuidance, "classifier-free guidance scale; ≤ 1 turns guidance off")
	fs.IntVar(&o.width, "width", 0, "image width in pixels, a multiple of 8 (default: the model's, 512 for SD 1.x)")
	fs.IntVar(&o.height, "height", 0, "image height in pixels, a multiple of 8 (default: the model's)")
	fs.StringVar(&o.scheduler, "scheduler", "", "scheduler: "+strings.Join(scheduler.Names(), ", ")+" (default: the model's)")
	fs.IntVar(&o.n, "n", 1, "number of images")
	fs.StringVar(&o.out, "out", "out.png", "output PNG `path`; with -n > 1 numbered: out-1.png, out-2.png, …")
	fs.BoolVar(&o.fp16, "fp16", false, "half-precision weights: load the fp16 weights variant where the model has one (half the\n"+
		"download) and keep Linear and Conv2d weights as fp16 in memory (half the weight memory; float32 weights are\n"+
		"rounded to fp16 at load)")
	fs.BoolVar(&o.safety, "safety", true, "run the model's safety checker, if it has one (flagged images are written black);\n"+
		"-safety=false turns it off and skips its download")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q (the prompt goes in -prompt)", fs.Arg(0))
	case o.prompt == "":
		return o, errors.New("-prompt is required")
	case o.n < 1:
		return o, fmt.Errorf("-n %d: want at least 1", o.n)
	case o.steps < 1:
		return o, fmt.Errorf("-steps %d: want at least 1", o.steps)
	case o.width < 0 || o.width%8 != 0:
		return o, fmt.Errorf("-width %d: want a positive multiple of 8", o.width)
	case o.height < 0 || o.height%8 != 0:
		return o, fmt.Errorf("-height %d: want a positive multiple of 8", o.height)
	case o.guidance == 0:
		o.guidance = 1 // 0 means "default" to the pipeline; on the command line it means no guidance
	}
	return o, nil
}

// run is the whole command: flags in args, results on stdout, progress and usage on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	// Fail now rather than after minutes of work when the images cannot be written.
	if st, err := os.Stat(filepath.Dir(o.out)); err != nil || !st.IsDir() {
		return fmt.Errorf("-out %s: folder %s does not exist", o.out, filepath.Dir(o.out))
	}
	tty := isTerminal(stderr)

	var loadOpts []pipeline.Option
	if o.fp16 {
		loadOpts = append(loadOpts, pipeline.WithVariant("fp16"), pipeline.WithHalfWeights())
	}
	if !o.safety {
		loadOpts = append(loadOpts, pipeline.WithoutSafetyChecker())
	}
	dl := newDownloadBar(stderr, tty)
	if hub.IsRepoID(o.model) {
		fmt.Fprintf(stderr, "model %s (Hub cache %s)\n", o.model, hub.CacheDir())
		loadOpts = append(loadOpts, pipeline.WithHubOptions(hub.WithProgress(dl.update)))
	}
	p, err := pipeline.LoadContext(ctx, o.model, loadOpts...)
	dl.finish()
	if err != nil {
		return err
	}
	defer p.Close()

	if o.seed < 0 {
		o.seed = int64(rand.Uint32())
	}
	fmt.Fprintf(stdout, "seed: %d\n", o.seed)
	bar := newStepBar(stderr, tty)
	req := pipeline.Request{
		Prompt: o.prompt, NegativePrompt: o.negative, Width: o.width, Height: o.height,
		Steps: o.steps, GuidanceScale: o.guidance, Seed: o.seed, Scheduler: o.scheduler,
		NumImages: o.n, Progress: bar.update,
	}
	res, err := p.Generate(ctx, req)
	bar.finish()
	if err != nil {
		return err
	}
	r := res.Request
	params := pngmeta.Parameters{
		Prompt: r.Prompt, NegativePrompt: r.NegativePrompt, Steps: r.Steps,
		Sampler: pipeline.SamplerName(r.Scheduler), CFGScale: r.GuidanceScale, Seed: r.Seed,
		Width: r.Width, Height: r.Height, Model: res.Model,
	}
	for i, img := range res.Images {
		path := o.out
		pi := params
		if len(res.Images) > 1 {
			path = numbered(o.out, i+1)
			pi.Extra = []pngmeta.Field{{Key: "Batch size", Value: strconv.Itoa(len(res.Images))}, {Key: "Batch pos", Value: strconv.Itoa(i)}}
		}
		if err := writePNG(path, img, pi); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", path)
		if i < len(res.NSFW) && res.NSFW[i] {
			fmt.Fprintf(stderr, "txt2img: %s: NSFW content detected by the safety checker; the image is black (-safety=false turns the checker off)\n", path)
		}
	}
	t := res.Timings
	checker := ""
	if res.NSFW != nil {
		checker = ", safety checker " + seconds(t.Safety)
	}
	fmt.Fprintf(stdout, "%s, %d steps (%d UNet calls), %dx%d: text %s, denoise %s (%s/step), decode %s%s, total %s\n",
		r.Scheduler, r.Steps, len(res.Timesteps), r.Width, r.Height, seconds(t.Text), seconds(t.Denoise),
		seconds(t.Denoise/time.Duration(max(1, len(t.Steps)))), seconds(t.Decode), checker, seconds(t.Total))
	return nil
}

// numbered turns out.png into out-3.png.
func numbered(path string, i int) string {
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(path, ext), i, ext)
}

// writePNG writes img with its parameters chunk, through a temporary file in the same folder so
// that a failed write leaves no truncated PNG behind.
func writePNG(path string, img image.Image, p pngmeta.Parameters) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".txt2img-*.png")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	err = pngmeta.EncodeWithText(f, img, pngmeta.Text{Keyword: pngmeta.ParametersKeyword, Value: p.String()})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// seconds formats d as seconds with three significant digits.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'g', 3, 64) + " s"
}
