package hub_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/smallsd/smallsd/hub"
)

// Download a pipeline into the shared Hugging Face cache (or find it there) and print a progress line
// per file. The returned folder is a diffusers-layout model folder for the pipeline package.
// (Not run by go test: it needs the network.)
func ExampleDownload() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt) // Ctrl-C stops; a rerun resumes
	defer stop()
	dir, err := hub.Download(ctx, "OFA-Sys/small-stable-diffusion-v0",
		hub.WithProgress(func(p hub.Progress) {
			fmt.Fprintf(os.Stderr, "\r[%d/%d] %-45s %6.1f/%6.1f MB %5.1f MB/s %4.0fs left ",
				p.Index, p.Count, p.File, float64(p.Done)/1e6, float64(p.Total)/1e6, p.Rate/1e6, p.Remaining.Seconds())
			if p.Done == p.Total {
				fmt.Fprintln(os.Stderr)
			}
		}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("model folder:", dir)
}

// A command can take either a local model folder or a Hub repo id in one flag.
func ExampleIsRepoID() {
	for _, arg := range []string{"OFA-Sys/small-stable-diffusion-v0", "../testdata/tiny-sd", "tiny-sd"} {
		fmt.Println(arg, hub.IsRepoID(arg))
	}
	// Output:
	// OFA-Sys/small-stable-diffusion-v0 true
	// ../testdata/tiny-sd false
	// tiny-sd false
}
