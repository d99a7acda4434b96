package pipeline

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/smallsd/smallsd/internal/nn"
)

// The memory budget bounds the buffers the models' compiled programs hold for their
// intermediate values (weights not counted): one nn.Cache, shared by the text encoder, the UNet
// and the VAE, keeps programs while their buffers fit in it, and a request whose largest
// program does not fit is an error before any of its work starts.

// WithMemoryBudget sets the bytes the pipeline may use for the models' working buffers (not
// their weights): the compiled programs of the text encoder, UNet and VAE share them, the least
// recently used making room for the next, and a request that needs more (too large an image or
// batch) is an error saying how much it needs. The default is DefaultMemoryBudget.
func WithMemoryBudget(bytes int64) Option { return func(o *loadOptions) { o.budget = bytes } }

// DefaultMemoryBudget returns the budget a Pipeline gets without WithMemoryBudget: half the
// memory of the machine (or of the container's cgroup limit, when lower), at least 1 GiB; 4 GiB
// where the machine's memory cannot be read. A 512×512 image with guidance needs about
// 0.5 GiB (the VAE decoder's buffers), a 1024×1024 one about 2 GiB.
func DefaultMemoryBudget() int64 {
	total := physicalMemory()
	if total <= 0 {
		return 4 << 30
	}
	return max(total/2, 1<<30)
}

// MemoryBudget returns the pipeline's buffer budget in bytes.
func (p *Pipeline) MemoryBudget() int64 { return p.cache.Limit() }

// useCache makes every model of the pipeline keep its programs in one cache of the budget.
func (p *Pipeline) useCache(budget int64) {
	if budget <= 0 {
		budget = DefaultMemoryBudget()
	}
	p.cache = nn.NewCache(budget)
	p.text.Runner().SetCache(p.cache)
	p.unet.Runner().SetCache(p.cache)
	p.vae.Runner().SetCache(p.cache)
	if p.enc != nil {
		p.enc.Runner().SetCache(p.cache)
	}
	if p.safety != nil {
		p.safety.Runner().SetCache(p.cache)
	}
}

// checkBudget returns an error when one of the programs r needs (the UNet on batch unetBatch
// with text of textLen positions, the VAE decoder, and the encoder for image-to-image) has
// buffers larger than the budget. The programs are compiled (not allocated) on the way, and
// kept for the run that follows.
func (p *Pipeline) checkBudget(r Request, unetBatch, textLen int) error {
	shape := p.latentShape(r)
	type need struct {
		what  string
		bytes func() (int64, error)
	}
	needs := []need{
		{fmt.Sprintf("the UNet on %d×%d×%d×%d latents", unetBatch, shape[1], shape[2], shape[3]), func() (int64, error) {
			return p.unet.BufferBytes([]int{unetBatch, shape[1], shape[2], shape[3]}, []int{unetBatch, textLen, p.text.Config().HiddenSize})
		}},
	}
	if p.tiny == nil {
		needs = append(needs, need{fmt.Sprintf("the VAE decoder on %d×%d latents", shape[2], shape[3]), func() (int64, error) {
			return p.vae.BufferBytes(shape[2], shape[3])
		}})
	}
	if r.Init != nil {
		needs = append(needs, need{fmt.Sprintf("the VAE encoder on a %d×%d image", r.Width, r.Height), func() (int64, error) {
			e, err := p.encoder()
			if err != nil {
				return 0, err
			}
			return e.BufferBytes(r.Height, r.Width)
		}})
	}
	budget := p.cache.Limit()
	for _, n := range needs {
		b, err := n.bytes()
		if err != nil {
			return fmt.Errorf("pipeline: %s: %w", n.what, err)
		}
		if b > budget {
			return fmt.Errorf("pipeline: the request needs %s of buffers for %s, %w of %s "+
				"(a smaller Width×Height or NumImages, or a larger WithMemoryBudget)", gib(b), n.what, ErrOverBudget, gib(budget))
		}
	}
	return nil
}

// stageModel is a model the pipeline runs in one stage of a request.
type stageModel interface {
	Runner() *nn.Runner
	ReleaseWeightPages() int64
}

// packedReleaser is a stage model that can drop the packed copies of its weights until its next
// call (clip.TextModel: the text encoder's, idle during denoising).
type packedReleaser interface{ ReleasePackedWeights() int64 }

// endStage releases the working buffers of a stage that is over (the text encoder after
// encoding, the UNet after denoising, the VAE after decoding) and, for a large one, collects
// them and returns their pages to the system (debug.FreeOSMemory), so that the next stage does
// not add its buffers to them: the peak is then the largest stage's, not the sum of all. The
// price is recompiling (tens of milliseconds) and refilling the buffers on the next request.
// Unless the pipeline keeps its memory (WithKeepMemory), the model's weight pages leave memory
// too, and so do the packed copies of the text encoder's Linear weights (packed again from the
// mapped file on its next call).
func (p *Pipeline) endStage(m stageModel, collect bool) {
	m.Runner().Release()
	if !p.keepMemory {
		p.releasedPages.Add(m.ReleaseWeightPages())
		if r, ok := m.(packedReleaser); ok && r.ReleasePackedWeights() > 0 {
			collect = true
		}
	}
	if collect {
		debug.FreeOSMemory()
	}
}

// releaseLoadPages takes out of memory the weight pages that building the models read (Linear
// weights are packed into the GEMM's layout at load, reading the whole mapped matrix once),
// unless the pipeline keeps its memory: they are not read again until a model needs them.
func (p *Pipeline) releaseLoadPages() {
	if p.keepMemory {
		return
	}
	for _, m := range []stageModel{p.text, p.unet, p.vae} {
		p.releasedPages.Add(m.ReleaseWeightPages())
	}
	if p.safety != nil {
		p.releasedPages.Add(p.safety.ReleaseWeightPages())
	}
}

// stepDone runs after each denoising step: unless the pipeline keeps its memory
// (WithKeepMemory), it collects the step's garbage and returns the free pages to the system
// (debug.FreeOSMemory, 6–22 ms measured), so that the next UNet call starts from the live heap
// instead of adding to what the last one left (the kernels' pooled packing buffers, emptied by
// every collection and allocated again, are most of it).
func (p *Pipeline) stepDone() {
	if !p.keepMemory {
		t0 := time.Now()
		debug.FreeOSMemory()
		p.stepFree.Add(int64(time.Since(t0)))
	}
}

// WithKeepMemory trades memory for a little speed: the pipeline keeps every model's weights in
// memory between uses and leaves freed memory to the Go runtime between denoising steps.
//
// By default (without it) the pipeline takes the weights of a model whose stage of a request is
// over out of the process's resident memory (the text encoder once the prompt is encoded, the
// UNet once denoising is done, the VAE once the images are decoded; weights.Store.ReleasePages):
// the weights files are memory-mapped, so the pages are read again, from the system's page
// cache, when the model next runs. The text encoder's Linear weights, packed into its own memory
// at load, are dropped after encoding too and packed again from the file on its next call. It
// also returns the memory freed by each denoising step to the system. The peak memory of an
// image is then the largest stage's weights and buffers rather than all the models' weights
// together: for a 512×512 small-sd image, 2.46 GiB instead of 3.76 GiB in float32 and 1.52–1.58 GiB
// instead of 2.43 GiB with half weights (README, "What it costs"). The price is reading the
// weights again on the next image (page faults from the page cache, about 1 s per GB measured
// on a 2-core AMD EPYC, or a read from disk if the system has dropped the file from its cache),
// packing the text encoder's weights again (0.5–0.7 s) and about 20 ms per step. Weights that are not a mapped file (models built by New from weights in memory, half or
// bf16 weights rounded from float32 files, platforms without mmap) stay where they are.
func WithKeepMemory() Option { return func(o *loadOptions) { o.keepMemory = true } }

// ErrOverBudget is wrapped by the error Generate returns for a request whose buffers do not fit
// in the memory budget (too large an image or batch), so that a server can tell it from a failure.
var ErrOverBudget = errors.New("more than the memory budget")

// gib formats a byte count in GiB (MiB below 1 GiB).
func gib(b int64) string {
	if b < 1<<30 {
		return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
}
