package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallsd/smallsd/internal/golden"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// start runs the command on 127.0.0.1 with tiny-sd and waits until /healthz answers 200.
func start(t *testing.T, extra ...string) (url string, stop func() error, log *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log = &syncBuffer{}
	addr := make(chan string, 1)
	done := make(chan error, 1)
	args := append([]string{"-model", golden.Path("tiny-sd"), "-addr", "127.0.0.1:0"}, extra...)
	go func() { done <- run(ctx, args, log, func(a string) { addr <- a }) }()
	select {
	case a := <-addr:
		url = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("run: %v\n%s", err, log)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("/healthz never answered 200\n%s", log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("run did not return after shutdown\n%s", log)
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return url, stop, log
}

func txt2img(url, body string) (int, string) {
	resp, err := http.Post(url+"/sdapi/v1/txt2img", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitRunning waits until /sdapi/v1/progress shows a step done.
func waitRunning(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/sdapi/v1/progress?skip_current_image=true")
		if err == nil {
			var p struct {
				State struct {
					SamplingStep int `json:"sampling_step"`
				} `json:"state"`
			}
			json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			if p.State.SamplingStep > 0 {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no job started")
}

// The command serves the page and the API, logs a line per request, and on shutdown lets the
// running generation finish.
func TestServeAndShutdown(t *testing.T) {
	url, stop, log := start(t)
	resp, err := http.Get(url + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /: %v %v", resp, err)
	}
	resp.Body.Close()
	if code, body := txt2img(url, `{"prompt": "a apple", "steps": 2, "width": 64, "height": 64}`); code != 200 {
		t.Fatalf("txt2img: %d %s", code, body)
	}
	got := make(chan int, 1)
	go func() {
		code, _ := txt2img(url, `{"prompt": "a apple", "steps": 40, "width": 64, "height": 64}`)
		got <- code
	}()
	waitRunning(t, url)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if code := <-got; code != 200 {
		t.Errorf("the generation running at shutdown answered %d, want 200 (finished within -grace)", code)
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Error("the server still answers after shutdown")
	}
	for _, want := range []string{"method=GET path=/ status=200", "method=POST path=/sdapi/v1/txt2img status=200 duration=",
		"shutting down", "stopped"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// With a short -grace the running generation is cancelled at shutdown, and its client gets 503.
func TestShutdownGrace(t *testing.T) {
	url, stop, log := start(t, "-grace", "50ms", "-queue", "1")
	got := make(chan int, 1)
	go func() {
		code, _ := txt2img(url, `{"prompt": "slow", "steps": 1000, "width": 64, "height": 64, "sampler_name": "Euler"}`)
		got <- code
	}()
	waitRunning(t, url)
	t0 := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("shut down in %v", time.Since(t0))
	if code := <-got; code != 503 {
		t.Errorf("the cancelled generation answered %d, want 503\n%s", code, log)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-queue", "-1"}, {"extra"}, {"-max-body", "0"}, {"-nope"}} {
		if err := run(context.Background(), args, io.Discard, nil); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if err := run(context.Background(), []string{"-model", "/nonexistent", "-addr", "127.0.0.1:0"}, io.Discard, nil); err == nil ||
		!strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("missing model: %v", err)
	}
}

// With -preview-decoder (TAESD) the progress previews are full-size pictures.
func TestPreviewDecoder(t *testing.T) {
	url, stop, _ := start(t, "-preview-decoder", golden.Path("taesd-tiny"), "-preview-every", "1", "-grace", "10ms")
	go txt2img(url, `{"prompt": "slow", "steps": 1000, "width": 64, "height": 48, "sampler_name": "Euler"}`)
	waitRunning(t, url)
	var size image.Point
	deadline := time.Now().Add(10 * time.Second)
	for size.X == 0 && time.Now().Before(deadline) {
		resp, err := http.Get(url + "/sdapi/v1/progress")
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			CurrentImage *string `json:"current_image"`
		}
		json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if p.CurrentImage != nil {
			img, err := png.Decode(base64.NewDecoder(base64.StdEncoding, strings.NewReader(*p.CurrentImage)))
			if err != nil {
				t.Fatal(err)
			}
			size = img.Bounds().Size()
		}
	}
	t.Logf("preview %v", size)
	if size != image.Pt(64, 48) {
		t.Errorf("preview is %v, want the image's size 64×48 (TAESD)", size)
	}
	stop()
}
