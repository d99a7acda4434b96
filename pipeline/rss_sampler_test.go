package pipeline

import (
	"fmt"
	"runtime/metrics"
	"strings"
	"sync"
	"time"
)

// rssSampler samples the process's resident memory every few tens of milliseconds while a
// generation runs and keeps, per stage (text, denoise, decode), the sample with the largest
// VmRSS, with what it was made of: anonymous and file-backed pages (/proc/self/status RssAnon,
// RssFile) and the Go heap (runtime/metrics: the bytes the runtime holds from the system and
// does not return, and the live heap objects). Stages are switched by the benchmark from the
// Progress callback.
type rssSampler struct {
	mu    sync.Mutex
	stage string
	peaks map[string]rssSample
	order []string
	stop  chan struct{}
	done  chan struct{}
}

// rssSample is one sample, in kB (from /proc) and bytes (from the runtime).
type rssSample struct {
	rss, anon, file int64 // kB
	goHeld, goLive  uint64
}

func newRSSSampler(stage string) *rssSampler {
	s := &rssSampler{stage: stage, peaks: map[string]rssSample{}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *rssSampler) setStage(stage string) {
	s.sample() // the end of the old stage
	s.mu.Lock()
	s.stage = stage
	s.mu.Unlock()
}

func (s *rssSampler) loop() {
	defer close(s.done)
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sample()
		}
	}
}

var rssMetrics = []string{"/memory/classes/total:bytes", "/memory/classes/heap/released:bytes", "/memory/classes/heap/objects:bytes"}

func (s *rssSampler) sample() {
	m := rssSample{rss: procKB("/proc/self/status", "VmRSS"), anon: procKB("/proc/self/status", "RssAnon"),
		file: procKB("/proc/self/status", "RssFile")}
	ms := make([]metrics.Sample, len(rssMetrics))
	for i, n := range rssMetrics {
		ms[i].Name = n
	}
	metrics.Read(ms)
	m.goHeld = ms[0].Value.Uint64() - ms[1].Value.Uint64()
	m.goLive = ms[2].Value.Uint64()
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.peaks[s.stage]
	if !ok {
		s.order = append(s.order, s.stage)
	}
	if !ok || m.rss > old.rss {
		s.peaks[s.stage] = m
	}
}

// finish stops sampling and returns the peak of every stage, one per line.
func (s *rssSampler) finish() string {
	s.sample()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, st := range s.order {
		m := s.peaks[st]
		fmt.Fprintf(&b, "%-8s peak RSS %.2f GiB (anon %.2f, file %.2f); Go runtime holds %.2f GiB, live heap %.2f GiB\n",
			st, float64(m.rss)/(1<<20), float64(m.anon)/(1<<20), float64(m.file)/(1<<20),
			float64(m.goHeld)/(1<<30), float64(m.goLive)/(1<<30))
	}
	return b.String()
}

// peak returns the largest VmRSS sampled in stage, in GiB.
func (s *rssSampler) peak(stage string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(s.peaks[stage].rss) / (1 << 20)
}
