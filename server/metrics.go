package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Server's Prometheus metrics, in a registry of its own (no global state: two
// Servers in one process do not collide).
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	generation prometheus.Histogram
	images     prometheus.Counter
}

func newMetrics(q *queue) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smallsd_http_requests_total",
			Help: "HTTP requests served, by route pattern and status code (499: the client went away).",
		}, []string{"route", "code"}),
		generation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "smallsd_generation_seconds",
			Help:    "Time of one pipeline call (one n_iter iteration: text encoder, denoising, VAE decode), finished ones only.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 240, 480, 960},
		}),
		images: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smallsd_images_total",
			Help: "Images generated.",
		}),
	}
	m.reg.MustRegister(m.requests, m.generation, m.images,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "smallsd_queue_length",
			Help: "Requests waiting for the pipeline (not counting the running one).",
		}, func() float64 { _, w := q.lengths(); return float64(w) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "smallsd_generation_running",
			Help: "1 while a generation runs, else 0.",
		}, func() float64 { r, _ := q.lengths(); return float64(r) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// handler serves the metrics in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
