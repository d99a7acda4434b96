package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smallsd/smallsd/pipeline"
)

// DefaultQueue is the number of requests that may wait behind the running one unless WithQueue
// says otherwise.
const DefaultQueue = 8

// DefaultMaxBodyBytes bounds a request body unless WithMaxBodyBytes says otherwise.
const DefaultMaxBodyBytes = 8 << 20

// Server serves the web page and the AUTOMATIC1111 API over one Pipeline. It is an http.Handler;
// see the package documentation for its routes. It keeps no state between requests except its
// queue.
type Server struct {
	p       *pipeline.Pipeline
	log     *slog.Logger
	q       queue
	maxBody int64
	limits  Limits
	mux     *http.ServeMux
	metrics *metrics
	loraDir string // WithLoRADir

	previewEvery int

	avgMu  sync.Mutex
	avgGen float64 // moving average of a generation's seconds, for Retry-After
}

// Option configures a Server.
type Option func(*Server)

// WithQueue sets how many requests may wait while one generates (default DefaultQueue); a
// request that finds the queue full gets 503 with Retry-After. 0 means none may wait.
func WithQueue(n int) Option { return func(s *Server) { s.q.max = max(0, n) } }

// WithLogger sets the logger for the one line per request and for recovered panics (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithMaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes); a larger body gets 413.
func WithMaxBodyBytes(n int64) Option { return func(s *Server) { s.maxBody = n } }

// WithLimits bounds what one request may ask for (see Limits).
func WithLimits(l Limits) Option { return func(s *Server) { s.limits = l } }

// WithPreviewEvery sets how often, in steps, a generation makes previews of its images for the
// page and /sdapi/v1/progress (default DefaultPreviewEvery): pipeline.Request.PreviewEvery, so
// TAESD when the pipeline has a preview decoder (a tenth of a step each at 512×512), else the
// almost free linear latent → RGB map. 0 makes none.
func WithPreviewEvery(n int) Option { return func(s *Server) { s.previewEvery = max(0, n) } }

// New returns a Server generating with p, which must be loaded; the caller keeps ownership of p
// (close it after the Server is done).
func New(p *pipeline.Pipeline, opts ...Option) *Server {
	s := &Server{p: p, q: queue{max: DefaultQueue}, maxBody: DefaultMaxBodyBytes, avgGen: 5,
		previewEvery: DefaultPreviewEvery}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.limits = s.limits.withDefaults()
	s.metrics = newMetrics(&s.q)
	s.routes()
	return s
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", s.handlePage)
	m.HandleFunc("GET /api/config", s.handleConfig)
	m.HandleFunc("POST /api/generate", s.handleStream)
	m.HandleFunc("POST /sdapi/v1/txt2img", s.handleTxt2img)
	m.HandleFunc("POST /sdapi/v1/img2img", s.handleImg2img)
	m.HandleFunc("GET /sdapi/v1/progress", s.handleProgress)
	m.HandleFunc("POST /sdapi/v1/interrupt", s.handleInterrupt)
	m.HandleFunc("GET /sdapi/v1/samplers", s.handleSamplers)
	m.HandleFunc("GET /sdapi/v1/sd-models", s.handleModels)
	m.HandleFunc("GET /sdapi/v1/options", s.handleOptions)
	m.HandleFunc("POST /sdapi/v1/options", s.handleSetOptions)
	m.HandleFunc("GET /sdapi/v1/schedulers", s.handleSchedulers)
	m.HandleFunc("GET /sdapi/v1/loras", s.handleLoras)
	m.HandleFunc("/sdapi/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not Found"})
	})
	m.HandleFunc("GET /healthz", s.handleHealth)
	m.Handle("GET /metrics", s.metrics.handler())
	s.mux = m
}

// ServeHTTP serves a request: it bounds the body, recovers panics (500), logs one line and counts
// the request by route and status.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusWriter{ResponseWriter: w}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(rec, r.Body, s.maxBody)
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v),
				"stack", string(debug.Stack()))
			if rec.status == 0 {
				writeError(rec, http.StatusInternalServerError, "InternalServerError", "internal server error", "")
			} else {
				rec.status = http.StatusInternalServerError // for the log; the client sees a cut response
			}
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
		s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", status,
			"duration", time.Since(start).Round(time.Microsecond))
	}()
	s.mux.ServeHTTP(rec, r)
}

// Drain makes the server refuse new generations (503) and report itself not ready on /healthz,
// and cancels the waiting ones (503: their clients may retry on another replica); the running
// generation goes on. Call it when shutting down, before http.Server.Shutdown.
func (s *Server) Drain() { s.q.drain(false) }

// Close is Drain that also cancels the running generation; its client gets 503.
func (s *Server) Close() { s.q.drain(true) }

// statusWriter records the status written, passing Flush on (for Server-Sent Events).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusClientClosed is logged and counted for a request whose client went away (nginx's 499).
const statusClientClosed = 499

// writeJSON writes v as JSON with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // a write error means the client went away
}

// apiError is the error body: the web UI's {"error", "detail"} plus, for a bad field, "field" and
// FastAPI's validation detail list.
type apiError struct {
	Error  string `json:"error"`
	Detail any    `json:"detail"`
	Field  string `json:"field,omitempty"`
}

// validationDetail is one entry of FastAPI's 422 detail list.
type validationDetail struct {
	Loc  []string `json:"loc"`
	Msg  string   `json:"msg"`
	Type string   `json:"type"`
}

// jsonString is v as JSON text, HTML characters not escaped.
func jsonString(v any) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n"), err
}

func writeError(w http.ResponseWriter, status int, kind, msg, field string) {
	e := apiError{Error: kind, Detail: msg, Field: field}
	if field != "" {
		e.Error = field + ": " + msg
		e.Detail = []validationDetail{{Loc: []string{"body", field}, Msg: msg, Type: "value_error"}}
	}
	writeJSON(w, status, e)
}

// writeRequestError answers a request that decodeTxt2img refused: 413 or 422.
func writeRequestError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	var fe *fieldError
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit), "")
	case errors.As(err, &fe):
		writeError(w, http.StatusUnprocessableEntity, "", fe.Msg, fe.Field)
	default:
		writeError(w, http.StatusUnprocessableEntity, "ValidationError", err.Error(), "")
	}
}

// writeBusy answers 503 with Retry-After: the queue is full or the server is shutting down.
func (s *Server) writeBusy(w http.ResponseWriter, err error) {
	_, waiting := s.q.lengths()
	w.Header().Set("Retry-After", strconv.Itoa(s.retryAfter(waiting)))
	msg := "the queue is full; retry later"
	if errors.Is(err, errDraining) {
		msg = "the server is shutting down; retry on another replica"
	}
	writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", msg, "")
}

// retryAfter estimates the seconds until a place in the queue frees: the average generation time
// for each job ahead, at least 1.
func (s *Server) retryAfter(waiting int) int {
	s.avgMu.Lock()
	avg := s.avgGen
	s.avgMu.Unlock()
	return int(min(3600, max(1, math.Ceil(avg*float64(1+waiting)))))
}

// observeGeneration records one pipeline call's duration.
func (s *Server) observeGeneration(d time.Duration) {
	s.metrics.generation.Observe(d.Seconds())
	s.avgMu.Lock()
	s.avgGen = 0.8*s.avgGen + 0.2*d.Seconds()
	s.avgMu.Unlock()
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.q.isDraining() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining", "model": s.p.Name()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "model": s.p.Name()})
}
