// Command txt2img makes images from a text prompt with a Stable Diffusion 1.x model, on the CPU.
//
//	txt2img -prompt "a photograph of an astronaut riding a horse" -out astronaut.png
//
// The model (-model) is a folder in diffusers layout or a Hugging Face Hub repository id,
// by default OFA-Sys/small-stable-diffusion-v0, downloaded on first use into the Hub cache
// that Python's huggingface_hub uses (HF_HOME, HF_HUB_CACHE, HF_TOKEN and HF_HUB_OFFLINE are
// honoured), or a single-file SD 1.x checkpoint (.safetensors or .ckpt, as fine-tunes are
// shared), with SD 1.x's configs or those of the folder or repository -config names. A seed reproduces the image diffusers' StableDiffusionPipeline makes on a CPU in
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
// With -precision bf16 the weight matrices are kept as bfloat16 (pipeline.WithPrecision), and on
// CPUs with AVX512-BF16 those layers multiply in bf16 with float32 sums: faster, and images a
// few 8-bit levels from float32's (see the README).
// Progress goes to standard error: a progress bar with the rate and the time left on a
// terminal, plain lines otherwise. Interrupting (Ctrl-C) stops within one UNet call.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/smallsd/smallsd/examples/internal/cli"
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

func parseFlags(args []string, stderr io.Writer) (cli.Flags, error) {
	var o cli.Flags
	fs := flag.NewFlagSet("txt2img", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: txt2img -prompt TEXT [flags]\n\nMakes images with a Stable Diffusion 1.x model. Flags:")
		fs.PrintDefaults()
	}
	o.Register(fs, "the model's, 512 for SD 1.x")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	return o, o.Check(fs)
}

// run is the whole command: flags in args, results on stdout, progress and usage on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	p, err := o.Load(ctx, stderr)
	if err != nil {
		return err
	}
	defer p.Close()
	bar := cli.NewStepBar(stderr, cli.IsTerminal(stderr))
	res, err := p.Generate(ctx, o.Request(stdout, bar))
	bar.Finish()
	if err != nil {
		return err
	}
	return o.WriteImages(stdout, stderr, res)
}
