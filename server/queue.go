package server

import (
	"context"
	"errors"
	"image"
	"sync"
	"time"

	"github.com/smallsd/smallsd/pipeline"
)

// Errors a job can end with besides the pipeline's own.
var (
	// errQueueFull: the queue holds as many waiting jobs as it may.
	errQueueFull = errors.New("server: the queue is full")
	// errDraining: the server is shutting down and takes no new jobs.
	errDraining = errors.New("server: the server is shutting down")
	// errInterrupted is the cancellation cause of a job stopped by POST /sdapi/v1/interrupt.
	errInterrupted = errors.New("server: interrupted")
)

// queue runs one job at a time, in arrival order, with at most max jobs waiting behind it.
type queue struct {
	max int

	mu       sync.Mutex
	running  *job
	waiting  []*job
	draining bool
}

// job is one request's generation: its place in the queue and its progress.
type job struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	start  chan struct{} // closed when the job reaches the front of the queue
	moved  chan struct{} // poked (buffer 1) when the job's queue position or progress changes
	queued time.Time

	mu      sync.Mutex
	pos     int // place in the queue, 1 = next to run; 0 once running
	started time.Time
	iter    int // iterations (n_iter) done
	iters   int
	prog    pipeline.Progress // the latest progress report of the current iteration
	// previews are the latest pictures of the images (Progress.Previews), made at step
	// previewStep of iteration previewIter.
	previews                 []*image.NRGBA
	previewIter, previewStep int
}

func newJob(ctx context.Context, iters int) *job {
	ctx, cancel := context.WithCancelCause(ctx)
	return &job{ctx: ctx, cancel: cancel, start: make(chan struct{}), moved: make(chan struct{}, 1),
		queued: time.Now(), iters: iters}
}

// poke tells the job's watcher that something changed, without blocking.
func (j *job) poke() {
	select {
	case j.moved <- struct{}{}:
	default:
	}
}

// enter puts j in the queue: running at once when nothing runs, else waiting at the back. It
// fails with errQueueFull or errDraining.
func (q *queue) enter(j *job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.draining:
		return errDraining
	case q.running == nil:
		q.running = j
		j.setRunning()
		close(j.start)
	case len(q.waiting) >= q.max:
		return errQueueFull
	default:
		q.waiting = append(q.waiting, j)
		j.setPos(len(q.waiting))
	}
	return nil
}

// wait blocks until j runs or its context ends (then j leaves the queue and wait returns the
// context's cause).
func (q *queue) wait(j *job) error {
	select {
	case <-j.start:
		return nil
	case <-j.ctx.Done():
		q.leave(j)
		return context.Cause(j.ctx)
	}
}

// leave takes j out of the queue, running or waiting, and starts the next job when j was running.
// It may be called more than once.
func (q *queue) leave(j *job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running == j {
		q.running = nil
		if len(q.waiting) > 0 {
			q.running = q.waiting[0]
			q.waiting = q.waiting[1:]
			q.running.setRunning()
			close(q.running.start)
		}
	} else {
		for i, w := range q.waiting {
			if w == j {
				q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
				break
			}
		}
	}
	for i, w := range q.waiting {
		w.setPos(i + 1)
	}
}

// lengths returns whether a job runs and how many wait.
func (q *queue) lengths() (running, waiting int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running != nil {
		running = 1
	}
	return running, len(q.waiting)
}

// current returns the running job, or nil.
func (q *queue) current() *job {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.running
}

// interrupt cancels the running job with errInterrupted; it reports whether one ran.
func (q *queue) interrupt() bool {
	if j := q.current(); j != nil {
		j.cancel(errInterrupted)
		return true
	}
	return false
}

// drain stops taking jobs and cancels the waiting ones with errDraining (their clients get
// 503 and may retry elsewhere); with all set, the running job is cancelled too.
func (q *queue) drain(all bool) {
	q.mu.Lock()
	q.draining = true
	waiting := append([]*job(nil), q.waiting...)
	running := q.running
	q.mu.Unlock()
	for _, j := range waiting {
		j.cancel(errDraining)
	}
	if all && running != nil {
		running.cancel(errDraining)
	}
}

func (q *queue) isDraining() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.draining
}

func (j *job) setPos(p int) {
	j.mu.Lock()
	changed := j.pos != p
	j.pos = p
	j.mu.Unlock()
	if changed {
		j.poke()
	}
}

func (j *job) setRunning() {
	j.mu.Lock()
	j.pos = 0
	j.started = time.Now()
	j.mu.Unlock()
	j.poke()
}

// report records a progress report of iteration iter.
func (j *job) report(iter int, pr pipeline.Progress) {
	j.mu.Lock()
	j.iter = iter
	j.prog = pr
	if pr.Previews != nil {
		j.previews, j.previewIter, j.previewStep = pr.Previews, iter, pr.Step
	}
	j.mu.Unlock()
	j.poke()
}

// status is a snapshot of a job's state.
type status struct {
	Pos         int // place in the queue; 0 when running
	Iter, Iters int // iterations done, and asked for
	Step, Total int // steps of the current iteration done, and its total
	Elapsed     time.Duration
	Progress    float64 // 0 … 1 over all iterations
	ETA         time.Duration
	// PreviewAt identifies the latest previews (iteration × 1e6 + step; −1: none yet).
	PreviewAt int
	previews  []*image.NRGBA
}

func (j *job) status() status {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := status{Pos: j.pos, Iter: j.iter, Iters: j.iters, Step: j.prog.Step, Total: j.prog.Total, PreviewAt: -1}
	if j.previews != nil {
		s.PreviewAt, s.previews = j.previewIter*1e6+j.previewStep, j.previews
	}
	if j.pos > 0 || j.started.IsZero() {
		return s
	}
	s.Elapsed = time.Since(j.started)
	if s.Total > 0 {
		s.Progress = (float64(s.Iter) + float64(s.Step)/float64(s.Total)) / float64(max(1, s.Iters))
	}
	if s.Progress > 0 {
		// As the web UI estimates: the time so far scaled by what is left.
		s.ETA = time.Duration(float64(s.Elapsed)/s.Progress) - s.Elapsed
	}
	return s
}

// preview is the latest previews of the batch as one picture (nil before the first).
func (s status) preview() image.Image {
	return grid(s.previews)
}
