package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/pipeline"
	"github.com/smallsd/smallsd/server"
)

// Serve a model and call the AUTOMATIC1111 API's txt2img.
func ExampleNew() {
	p, err := pipeline.Load(golden.Path("tiny-sd")) // or "OFA-Sys/small-stable-diffusion-v0"
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	srv := server.New(p, server.WithQueue(4), server.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	ts := httptest.NewServer(srv) // or http.ListenAndServe("127.0.0.1:7860", srv)
	defer ts.Close()

	resp, err := http.Post(ts.URL+"/sdapi/v1/txt2img", "application/json",
		strings.NewReader(`{"prompt": "a apple, 4k", "seed": 42, "steps": 4, "width": 64, "height": 64, "sampler_name": "Euler a"}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Images []string `json:"images"` // base64 PNG files
		Info   string   `json:"info"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		log.Fatal(err)
	}
	var info struct {
		Infotexts []string `json:"infotexts"`
	}
	json.Unmarshal([]byte(out.Info), &info)
	fmt.Println(resp.Status, len(out.Images), "image")
	fmt.Println(info.Infotexts[0])
	// Output:
	// 200 OK 1 image
	// a apple, 4k
	// Steps: 4, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 64x64, Model: tiny-sd
}
