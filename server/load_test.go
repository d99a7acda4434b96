package server

import (
	"context"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// 50 concurrent clients against a queue of 4, on 127.0.0.1: every answer is 200 or 503, none
// hangs, memory stays bounded, and /healthz answers throughout.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	s, ts := newTestServer(t, WithQueue(4))
	const clients = 50
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var peak atomic.Uint64
	var health struct {
		sync.Mutex
		n, bad int
		worst  time.Duration
	}
	var bg sync.WaitGroup
	bg.Go(func() { // /healthz throughout, and the heap's peak
		hc := &http.Client{Timeout: 2 * time.Second}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			t0 := time.Now()
			resp, err := hc.Get(ts.URL + "/healthz")
			d := time.Since(t0)
			health.Lock()
			health.n++
			health.worst = max(health.worst, d)
			if err != nil || resp.StatusCode != 200 {
				health.bad++
			}
			health.Unlock()
			if err == nil {
				resp.Body.Close()
			}
		}
	})

	codes := make([]int, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Go(func() {
			path := "/sdapi/v1/txt2img"
			if i%2 == 1 {
				path = "/api/generate"
			}
			codes[i], _, _ = post(t, ctx, ts.URL+path, `{"prompt": "load", "steps": 2, "width": 64, "height": 64}`)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	bg.Wait()

	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	t.Logf("%d clients, queue 4: %v in %v; /healthz %d times, worst %v, %d failed; heap in use %d MiB before, peak %d MiB",
		clients, count, elapsed.Round(time.Millisecond), health.n, health.worst.Round(time.Millisecond), health.bad,
		base>>20, peak.Load()>>20)
	if count[200]+count[503] != clients {
		t.Errorf("answers %v: want only 200 and 503 (0 = no answer in time)", count)
	}
	if count[200] < 5 {
		t.Errorf("only %d requests succeeded; the running one and the queue of 4 should", count[200])
	}
	if health.bad > 0 || health.n == 0 {
		t.Errorf("/healthz failed %d of %d times", health.bad, health.n)
	}
	if peak.Load() > base+512<<20 {
		t.Errorf("heap in use peaked at %d MiB (from %d MiB)", peak.Load()>>20, base>>20)
	}
	if r, w := s.q.lengths(); r != 0 || w != 0 {
		t.Errorf("after the load %d running, %d waiting", r, w)
	}
}
