// Package server serves a Stable Diffusion pipeline over HTTP: a web page to try it and the
// AUTOMATIC1111 web UI's API, so that the programs that speak it (scripts, bots, editor plug-ins)
// work unchanged. A Server is an http.Handler; mount it at the root of a mux or of its own
// http.Server:
//
//	p, err := pipeline.Load("OFA-Sys/small-stable-diffusion-v0")
//	…
//	http.ListenAndServe("127.0.0.1:7860", server.New(p))
//
// Routes:
//
//	GET  /                      the page (self-contained: no CDN, works offline)
//	GET  /api/config            the page's defaults (model, size, steps, samplers, limits)
//	POST /api/generate          the page's generation: a txt2img body in, Server-Sent Events out
//	POST /sdapi/v1/txt2img      AUTOMATIC1111: generate, {"images": [base64 PNG…], "parameters", "info"}
//	POST /sdapi/v1/img2img      AUTOMATIC1111: image-to-image and inpainting (init_images, mask, denoising_strength)
//	GET  /sdapi/v1/progress     AUTOMATIC1111: progress, ETA and a preview of the running job
//	POST /sdapi/v1/interrupt    AUTOMATIC1111: stop the running job
//	GET  /sdapi/v1/samplers     AUTOMATIC1111: the samplers ("Euler a", "DPM++ 2M Karras", "PLMS", …)
//	GET  /sdapi/v1/sd-models    AUTOMATIC1111: the one model
//	GET  /sdapi/v1/options      AUTOMATIC1111: the settings clients read (sd_model_checkpoint, …)
//	POST /sdapi/v1/options      AUTOMATIC1111: sd_model_checkpoint must be the model; others are ignored
//	GET  /sdapi/v1/schedulers   AUTOMATIC1111: the noise schedules ("Automatic", "Karras" with DPM++ 2M)
//	GET  /sdapi/v1/loras        AUTOMATIC1111: the LoRA files prompts may name as <lora:name:scale> (WithLoRADir)
//	GET  /healthz               200 while the server takes work, 503 once draining
//	GET  /metrics               Prometheus text format: queue length, requests by status, generation seconds
//
// One generation runs at a time (the CPU is the limit); up to WithQueue requests wait behind it,
// in arrival order, and a request that finds the queue full gets 503 with Retry-After. A client
// that disconnects cancels its job, waiting or running (within one UNet step). Bad fields get
// 422 with a JSON error naming the field, bodies over WithMaxBodyBytes 413, panics 500 (logged).
// Each request is logged in one line (method, path, status, duration) with log/slog.
//
// The Server keeps no state between requests except its queue: behind a load balancer, replicas
// scale out, each with its own queue, /healthz as the readiness check.
//
// The PNG images carry the generation parameters in a "parameters" text chunk in the web UI's
// form (see pipeline/pngmeta), the same text as the response's infotexts.
package server
