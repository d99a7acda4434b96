// Command img2img changes a picture (image-to-image) or repaints part of it (inpainting) with a
// Stable Diffusion 1.x model, on the CPU.
//
//	img2img -init photo.png -prompt "a watercolor painting" -strength 0.6 -out painting.png
//	img2img -init photo.png -mask mask.png -prompt "a red cube" -out cube.png
//
// It takes txt2img's flags (-model, -prompt, -negative, -seed, -steps, -guidance, -scheduler,
// -n, -out, -fp16; -width and -height default to the init image's size), and:
//
//	-init PATH      the picture to start from, PNG or JPEG (grey and alpha are read as PIL's
//	                convert("RGB") reads them); resized with PIL's Lanczos filter to -width
//	                and -height, by default its own size rounded down to a multiple of 8
//	-strength F     how much of the schedule runs, in (0, 1], default 0.75: about F × steps UNet
//	                calls; low values stay close to the picture, 1 redraws it
//	-mask PATH      inpainting: a picture of the init image's size, white (luma ≥ 128) where to
//	                repaint, black where to keep
//	-paste          with -mask: copy the init image's pixels outside the mask into the result
//	                (otherwise they are as the VAE reproduces them, as in diffusers)
//
// A seed reproduces the image diffusers' StableDiffusionImg2ImgPipeline (or, with -mask,
// StableDiffusionInpaintPipeline) makes on a CPU in float32 with the same settings. Each image
// is written as a PNG with its parameters in AUTOMATIC1111's form, including "Denoising
// strength".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	_ "image/jpeg" // -init and -mask may be JPEG
	_ "image/png"
	"io"
	"os"
	"os/signal"

	"github.com/smallsd/smallsd/examples/internal/cli"
	"github.com/smallsd/smallsd/pipeline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "img2img:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	cli.Flags
	init, mask string
	strength   float64
	paste      bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("img2img", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: img2img -init PICTURE [-mask MASK] -prompt TEXT [flags]\n\n"+
			"Changes a picture (or, with -mask, repaints part of it) with a Stable Diffusion 1.x model. Flags:")
		fs.PrintDefaults()
	}
	o.Register(fs, "the init image's")
	fs.StringVar(&o.init, "init", "", "the picture to start from, PNG or JPEG (required)")
	fs.Float64Var(&o.strength, "strength", pipeline.DefaultStrength, "denoising strength in (0, 1]: the part of the schedule run")
	fs.StringVar(&o.mask, "mask", "", "inpainting mask `path` (PNG or JPEG, the init image's size): white repaints, black keeps")
	fs.BoolVar(&o.paste, "paste", false, "with -mask: paste the init image's pixels outside the mask into the result")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if err := o.Check(fs); err != nil {
		return o, err
	}
	switch {
	case o.init == "":
		return o, errors.New("-init is required (the picture to change)")
	case !(o.strength > 0 && o.strength <= 1):
		return o, fmt.Errorf("-strength %v: want a number in (0, 1]", o.strength)
	case o.paste && o.mask == "":
		return o, errors.New("-paste needs -mask")
	}
	return o, nil
}

// readImage decodes a PNG or JPEG file; flag names the flag it came from, for errors.
func readImage(flag, path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s %s: not a PNG or JPEG picture: %w", flag, path, err)
	}
	return img, nil
}

// run is the whole command: flags in args, results on stdout, progress and usage on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	init, err := readImage("-init", o.init)
	if err != nil {
		return err
	}
	var mask image.Image
	if o.mask != "" {
		if mask, err = readImage("-mask", o.mask); err != nil {
			return err
		}
	}
	p, err := o.Load(ctx, stderr)
	if err != nil {
		return err
	}
	defer p.Close()

	bar := cli.NewStepBar(stderr, cli.IsTerminal(stderr))
	req := o.Request(stdout, bar)
	req.Init, req.Mask, req.Strength, req.PasteOriginal = init, mask, o.strength, o.paste
	res, err := p.Generate(ctx, req)
	bar.Finish()
	if err != nil {
		return err
	}
	return o.WriteImages(stdout, stderr, res) // the parameters include "Denoising strength"
}
