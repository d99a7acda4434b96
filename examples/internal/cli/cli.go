// Package cli is what the example commands (txt2img, img2img) share: the generation flags,
// loading the model with a download bar, the denoising progress bar, and writing the images as
// PNGs with their parameters.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/smallsd/smallsd/hub"
	"github.com/smallsd/smallsd/pipeline"
	"github.com/smallsd/smallsd/pipeline/pngmeta"
	"github.com/smallsd/smallsd/scheduler"
)

// LoadFlags are the flags that say which model to load and how: every command that loads one
// (txt2img, img2img, webui) has them.
type LoadFlags struct {
	Model, Config, VAE string
	FP16, Safety       bool
	Precision          string
}

// Register defines the loading flags on fs.
func (f *LoadFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Model, "model", pipeline.DefaultModel, "model `folder` (diffusers layout), Hugging Face Hub repo id, or single-file SD 1.x\n"+
		"checkpoint (.safetensors or .ckpt in the original LDM naming)")
	fs.StringVar(&f.Config, "config", "", "with a single-file -model: take the configs, tokenizer and scheduler from this diffusers\n"+
		"`folder or repo` id instead of SD 1.x's defaults")
	fs.StringVar(&f.VAE, "vae", "", "decode the images with the VAE in this `folder or repo` id instead of the model's: TAESD\n"+
		"(\""+pipeline.TAESDRepo+"\", about 18× less decoding work, some loss of detail) or another AutoencoderKL")
	fs.BoolVar(&f.FP16, "fp16", false, "half-precision weights: load the fp16 weights variant where the model has one (half the\n"+
		"download) and keep Linear and Conv2d weights as fp16 in memory (half the weight memory; float32 weights are\n"+
		"rounded to fp16 at load)")
	fs.StringVar(&f.Precision, "precision", "fp32", "precision of the matrix products: fp32 (diffusers-exact) or bf16 (bfloat16 weights in\n"+
		"memory; with AVX512-BF16, bf16 inputs and float32 sums: faster, images differ slightly)")
	fs.BoolVar(&f.Safety, "safety", true, "run the model's safety checker, if it has one (flagged images are black);\n"+
		"-safety=false turns it off and skips its download")
}

// Check validates the parsed loading flags.
func (f *LoadFlags) Check() error {
	if f.Precision != "fp32" && f.Precision != "bf16" {
		return fmt.Errorf("-precision %q: want fp32 or bf16", f.Precision)
	}
	return nil
}

// Flags are the flags every generating command has.
type Flags struct {
	LoadFlags
	Prompt, Negative, Scheduler, Out string
	PromptSyntax                     string
	Seed                             int64
	Steps, Width, Height, N          int
	Guidance                         float64
	LoRAs                            []pipeline.LoRA // -lora, repeatable
}

// Register defines the flags on fs. widthDoc says what a zero -width and -height mean.
func (f *Flags) Register(fs *flag.FlagSet, widthDoc string) {
	f.LoadFlags.Register(fs)
	fs.StringVar(&f.Prompt, "prompt", "", "what the image should show (required)")
	fs.StringVar(&f.Negative, "negative", "", "what the image should not show (negative prompt)")
	fs.StringVar(&f.PromptSyntax, "prompt-syntax", "", "how prompts are read: \"\" (diffusers: plain text, 75 tokens) or\n"+
		"\"a1111\" (AUTOMATIC1111: (word:1.3) weights, up to 225 tokens)")
	fs.Int64Var(&f.Seed, "seed", -1, "random seed (torch-compatible); negative picks one at random, printed")
	fs.IntVar(&f.Steps, "steps", pipeline.DefaultSteps, "inference steps")
	fs.Float64Var(&f.Guidance, "guidance", pipeline.DefaultGuidance, "classifier-free guidance scale; ≤ 1 turns guidance off")
	fs.IntVar(&f.Width, "width", 0, "image width in pixels, a multiple of 8 (default: "+widthDoc+")")
	fs.IntVar(&f.Height, "height", 0, "image height in pixels, a multiple of 8 (default: "+widthDoc+")")
	fs.StringVar(&f.Scheduler, "scheduler", "", "scheduler: "+strings.Join(scheduler.Names(), ", ")+" (default: the model's)")
	fs.IntVar(&f.N, "n", 1, "number of images")
	fs.StringVar(&f.Out, "out", "out.png", "output PNG `path`; with -n > 1 numbered: out-1.png, out-2.png, …")
	fs.Func("lora", "LoRA adapter `FILE[:SCALE]` (kohya or diffusers .safetensors; scale default 1.0), applied to the UNet\n"+
		"and text encoder; repeat for several", func(s string) error {
		l, err := ParseLoRA(s)
		f.LoRAs = append(f.LoRAs, l)
		return err
	})
}

// ParseLoRA reads a -lora value, FILE or FILE:SCALE (the scale defaults to 1.0).
func ParseLoRA(s string) (pipeline.LoRA, error) {
	l := pipeline.LoRA{Path: s, Scale: 1}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		if v, err := strconv.ParseFloat(s[i+1:], 64); err == nil {
			l.Path, l.Scale = s[:i], v
		}
	}
	if l.Path == "" {
		return l, fmt.Errorf("-lora %q: no file", s)
	}
	if _, err := os.Stat(l.Path); err != nil {
		return l, fmt.Errorf("-lora %q: %w", s, err)
	}
	return l, nil
}

// Check validates the parsed flags (fs has parsed them) and fails early when the output folder
// does not exist.
func (f *Flags) Check(fs *flag.FlagSet) error {
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q (the prompt goes in -prompt)", fs.Arg(0))
	case f.Prompt == "":
		return errors.New("-prompt is required")
	case f.N < 1:
		return fmt.Errorf("-n %d: want at least 1", f.N)
	case f.Steps < 1:
		return fmt.Errorf("-steps %d: want at least 1", f.Steps)
	case f.Width < 0 || f.Width%8 != 0:
		return fmt.Errorf("-width %d: want a positive multiple of 8", f.Width)
	case f.Height < 0 || f.Height%8 != 0:
		return fmt.Errorf("-height %d: want a positive multiple of 8", f.Height)
	case f.Guidance == 0:
		f.Guidance = 1 // 0 means "default" to the pipeline; on the command line it means no guidance
	}
	if err := f.LoadFlags.Check(); err != nil {
		return err
	}
	// Fail now rather than after minutes of work when the images cannot be written.
	if st, err := os.Stat(filepath.Dir(f.Out)); err != nil || !st.IsDir() {
		return fmt.Errorf("-out %s: folder %s does not exist", f.Out, filepath.Dir(f.Out))
	}
	return nil
}

// Load loads the model -model (and -config) names, showing a download's progress on stderr;
// more options follow the flags'.
func (f *LoadFlags) Load(ctx context.Context, stderr io.Writer, more ...pipeline.Option) (*pipeline.Pipeline, error) {
	var opts []pipeline.Option
	if f.FP16 {
		opts = append(opts, pipeline.WithVariant("fp16"), pipeline.WithHalfWeights())
	}
	if !f.Safety {
		opts = append(opts, pipeline.WithoutSafetyChecker())
	}
	if prec, err := pipeline.ParsePrecision(f.Precision); err != nil {
		return nil, err
	} else if prec != pipeline.FP32 {
		opts = append(opts, pipeline.WithPrecision(prec))
	}
	dl := NewDownloadBar(stderr, IsTerminal(stderr))
	if hub.IsRepoID(f.Model) || hub.IsRepoID(f.Config) || hub.IsRepoID(f.VAE) {
		fmt.Fprintf(stderr, "model %s (Hub cache %s)\n", f.Model, hub.CacheDir())
		opts = append(opts, pipeline.WithHubOptions(hub.WithProgress(dl.Update)))
	}
	if f.Config != "" {
		opts = append(opts, pipeline.WithConfigFrom(f.Config))
	}
	if f.VAE != "" {
		opts = append(opts, pipeline.WithVAE(f.VAE))
	}
	p, err := pipeline.LoadContext(ctx, f.Model, append(opts, more...)...)
	dl.Finish()
	return p, err
}

// Request is the request the flags describe, with the seed chosen (and printed on stdout)
// when -seed is negative; progress goes to stderr on bar.
func (f *Flags) Request(stdout io.Writer, bar *StepBar) pipeline.Request {
	if f.Seed < 0 {
		f.Seed = int64(rand.Uint32())
	}
	fmt.Fprintf(stdout, "seed: %d\n", f.Seed)
	return pipeline.Request{
		Prompt: f.Prompt, NegativePrompt: f.Negative, Width: f.Width, Height: f.Height,
		Steps: f.Steps, GuidanceScale: f.Guidance, Seed: f.Seed, Scheduler: f.Scheduler,
		NumImages: f.N, Progress: bar.Update, PromptSyntax: f.PromptSyntax, LoRAs: f.LoRAs,
	}
}

// WriteImages writes res's images to -out (numbered when there are several) with their
// parameters, extra fields after the common ones, and prints what it wrote and the timings.
// Images the safety checker flagged (written black) get a line containing "NSFW" on stderr.
func (f *Flags) WriteImages(stdout, stderr io.Writer, res *pipeline.Result, extra ...pngmeta.Field) error {
	r := res.Request
	for i, img := range res.Images {
		path := f.Out
		if len(res.Images) > 1 {
			path = Numbered(f.Out, i+1)
		}
		pi := res.Parameters(i)
		pi.Extra = append(append([]pngmeta.Field{}, extra...), pi.Extra...) // extra fields before "Batch size"
		if err := WritePNG(path, img, pi); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", path)
		if i < len(res.NSFW) && res.NSFW[i] {
			fmt.Fprintf(stderr, "%s: NSFW content detected by the safety checker; the image is black (-safety=false turns the checker off)\n", path)
		}
	}
	t := res.Timings
	enc := ""
	if t.Encode > 0 {
		enc = "encode " + Seconds(t.Encode) + ", "
	}
	checker := ""
	if res.NSFW != nil {
		checker = ", safety checker " + Seconds(t.Safety)
	}
	fmt.Fprintf(stdout, "%s, %d steps (%d UNet calls), %dx%d: text %s, %sdenoise %s (%s/step), decode %s%s, total %s\n",
		r.Scheduler, r.Steps, len(res.Timesteps), r.Width, r.Height, Seconds(t.Text), enc, Seconds(t.Denoise),
		Seconds(t.Denoise/time.Duration(max(1, len(t.Steps)))), Seconds(t.Decode), checker, Seconds(t.Total))
	return nil
}

// Numbered turns out.png into out-3.png.
func Numbered(path string, i int) string {
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(path, ext), i, ext)
}

// WritePNG writes img with its parameters chunk, through a temporary file in the same folder so
// that a failed write leaves no truncated PNG behind.
func WritePNG(path string, img image.Image, p pngmeta.Parameters) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".smallsd-*.png")
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

// Seconds formats d as seconds with three significant digits.
func Seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'g', 3, 64) + " s"
}
