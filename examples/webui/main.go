// Command webui serves a Stable Diffusion 1.x model over HTTP: a web page to try it, and the
// AUTOMATIC1111 web UI's API for the programs that speak it (see package server).
//
//	webui -model OFA-Sys/small-stable-diffusion-v0 -addr 127.0.0.1:7860
//
// It listens at once; until the model is loaded (downloaded first when -model is a Hub
// repository id) /healthz and every other route answer 503 with Retry-After. Each request is
// logged in one line with log/slog. SIGINT or SIGTERM shuts it down gracefully: /healthz turns
// 503, no new work is taken, waiting requests get 503 (their clients may retry elsewhere), and
// the running generation may finish for up to -grace before it is cancelled; a second signal
// cancels it at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/smallsd/smallsd/examples/internal/cli"
	"github.com/smallsd/smallsd/pipeline"
	"github.com/smallsd/smallsd/server"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "webui:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	cli.LoadFlags                            // -model, -config, -vae, -fp16, -precision, -safety
	addr, scheduler, previewDecoder, loraDir string
	queue, previewEvery                      int
	grace                                    time.Duration
	maxBody                                  int64
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("webui", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: webui [flags]\n\nServes a web page and the AUTOMATIC1111 API for a Stable Diffusion 1.x model. Flags:")
		fs.PrintDefaults()
	}
	o.LoadFlags.Register(fs)
	fs.StringVar(&o.loraDir, "lora-dir", "", "`folder` of LoRA files that prompts may apply with <lora:name:scale>, as the web UI's models/Lora")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:7860", "listen `address` (host:port; :7860 listens on every interface)")
	fs.IntVar(&o.queue, "queue", server.DefaultQueue, "requests that may wait behind the running one; more get 503")
	fs.StringVar(&o.scheduler, "scheduler", "", "default scheduler for requests that name no sampler (default: the model's)")
	fs.StringVar(&o.previewDecoder, "preview-decoder", "", "decode progress previews with the TAESD in this `folder or repo` id\n"+
		"(e.g. "+pipeline.TAESDRepo+"); default: the linear latent→RGB map, or -vae's TAESD")
	fs.IntVar(&o.previewEvery, "preview-every", server.DefaultPreviewEvery, "make a progress preview every this many steps (0: none)")
	fs.DurationVar(&o.grace, "grace", 2*time.Minute, "on shutdown, how long the running generation may go on before it is cancelled")
	fs.Int64Var(&o.maxBody, "max-body", server.DefaultMaxBodyBytes, "largest request body in bytes")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.queue < 0:
		return o, fmt.Errorf("-queue %d: want 0 or more", o.queue)
	case o.previewEvery < 0:
		return o, fmt.Errorf("-preview-every %d: want 0 or more", o.previewEvery)
	case o.maxBody < 1:
		return o, fmt.Errorf("-max-body %d: want at least 1", o.maxBody)
	}
	return o, o.LoadFlags.Check()
}

// run is the whole command. It returns after a graceful shutdown, when ctx is done or on SIGINT
// or SIGTERM; ready, if not nil, is called with the address listened on.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(addr string)) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	// Until the model is loaded every request gets 503; then the server's handler takes over.
	var h atomic.Pointer[server.Server]
	httpSrv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s := h.Load(); s != nil {
				s.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Retry-After", "5")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, `{"error": "ServiceUnavailable", "detail": "the model is loading"}`)
			log.Info("request", "method", r.Method, "path", r.URL.Path, "status", http.StatusServiceUnavailable, "duration", time.Duration(0))
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	log.Info("listening", "addr", "http://"+ln.Addr().String()+"/", "model", o.Model)
	if ready != nil {
		ready(ln.Addr().String())
	}

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	go func() {
		select {
		case <-sig:
			cancelLoad()
		case <-loadCtx.Done():
		}
	}()

	var opts []pipeline.Option
	if o.scheduler != "" {
		opts = append(opts, pipeline.WithScheduler(o.scheduler))
	}
	if o.previewDecoder != "" {
		opts = append(opts, pipeline.WithPreviewDecoder(o.previewDecoder))
	}
	t0 := time.Now()
	p, err := o.Load(loadCtx, stderr, opts...)
	if err != nil {
		httpSrv.Close()
		return err
	}
	defer p.Close()
	if loadCtx.Err() != nil { // a signal came while loading
		httpSrv.Close()
		return nil
	}
	cancelLoad()
	srv := server.New(p, server.WithQueue(o.queue), server.WithLogger(log), server.WithMaxBodyBytes(o.maxBody),
		server.WithPreviewEvery(o.previewEvery), server.WithLoRADir(o.loraDir))
	h.Store(srv)
	log.Info("model loaded", "model", p.Name(), "seconds", time.Since(t0).Seconds())

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	case <-sig:
	}
	log.Info("shutting down: draining", "grace", o.grace)
	srv.Drain()
	shCtx, cancel := context.WithTimeout(context.Background(), o.grace)
	defer cancel()
	go func() { // a second signal, or the grace running out, cancels the running generation
		select {
		case <-sig:
		case <-shCtx.Done():
		}
		srv.Close()
	}()
	if err := httpSrv.Shutdown(shCtx); err != nil {
		srv.Close()
		short, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if httpSrv.Shutdown(short) != nil {
			httpSrv.Close()
		}
	}
	log.Info("stopped")
	return nil
}
