package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/hub"
	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/safety"
	"github.com/smallsd/smallsd/scheduler"
	"github.com/smallsd/smallsd/tokenizer"
	"github.com/smallsd/smallsd/unet"
	"github.com/smallsd/smallsd/vae"
	"github.com/smallsd/smallsd/weights"
)

// DefaultModel is the Hub repository Load uses when given the empty string.
const DefaultModel = "OFA-Sys/small-stable-diffusion-v0"

// ErrClosed is returned (wrapped) by Generate on a closed Pipeline, and by every call on a
// closed model (it is the same value as clip.ErrClosed, unet.ErrClosed and vae.ErrClosed).
var ErrClosed = nn.ErrClosed

// Pipeline is a loaded text-to-image model. It is safe for concurrent use by several goroutines:
// the tokenizer and the models are (concurrent UNet calls on the same shape take turns), and
// each Generate call makes its own scheduler and random generator. Close may be called at any
// time, from any goroutine, a Progress callback included: generations in progress return
// ErrClosed at their next step.
type Pipeline struct {
	tok   *tokenizer.Tokenizer
	text  *clip.TextModel
	unet  *unet.Model
	vae   *vae.Decoder
	sched scheduler.Config
	// safety is the safety checker, nil when the model has none or it is off.
	safety *safety.Checker

	defaultScheduler string
	name             string
	maxLength        int // token ids per prompt: the text encoder's max_position_embeddings (77)

	closer io.Closer // Components.Closer
	loras  loraCache // LoRA files read for requests

	cache *nn.Cache // the models' programs, bounded by the memory budget (budget.go)

	keepMemory    bool         // Components.KeepMemory
	releasedPages atomic.Int64 // bytes of weight mappings endStage has advised out (for tests)
	stepFree      atomic.Int64 // nanoseconds stepDone spent returning memory (for benchmarks)

	mu        sync.Mutex
	closed    bool
	closeDone chan struct{} // closed when Close has finished
	closeErr  error

	encMu   sync.Mutex
	enc     *vae.Encoder                 // img2img and inpainting; loaded on first use
	loadEnc func() (*vae.Encoder, error) // set by Load

	tiny, preview *vae.Tiny // TAESD for the final decode, for previews (preview.go); may be nil
}

// Components are the parts New assembles into a Pipeline.
type Components struct {
	Tokenizer   *tokenizer.Tokenizer
	TextEncoder *clip.TextModel
	UNet        *unet.Model
	VAE         *vae.Decoder
	// VAEEncoder is needed for image-to-image and inpainting only; it may be nil (Load loads
	// it from the model folder on first use).
	VAEEncoder *vae.Encoder
	// SafetyChecker, if not nil, checks every image; flagged ones are returned black.
	SafetyChecker *safety.Checker
	// SchedulerConfig is the model's scheduler/scheduler_config.json; every scheduler is
	// configured from it, as diffusers' SchedulerClass.from_config(pipe.scheduler.config) does.
	SchedulerConfig scheduler.Config
	// Scheduler is the name of the scheduler used when a Request names none (one of
	// scheduler.Names()); "" means the one SchedulerForClass gives for PNDMScheduler, SD 1.x's.
	Scheduler string
	// Name is the model's name, reported in Result.Model; may be empty.
	Name string
	// Closer, if not nil, is closed by Close after the models: the weights file they read
	// when it is not theirs (a single-file checkpoint's).
	Closer io.Closer
	// TinyVAE, if not nil, decodes the final images instead of VAE (TAESD; see WithVAE), and
	// PreviewDecoder the previews (see WithPreviewDecoder). Both may be nil.
	TinyVAE, PreviewDecoder *vae.Tiny
	// MemoryBudget is the bytes the models' working buffers may take (see WithMemoryBudget);
	// 0 means DefaultMemoryBudget.
	MemoryBudget int64
	// KeepMemory keeps the models' weight pages in memory between their stages, and freed
	// memory with the Go runtime between denoising steps (see WithKeepMemory); by default a
	// model's mapped weights leave memory when its stage of a request is over.
	KeepMemory bool
}

// New assembles a Pipeline from components built elsewhere (Load builds them from a model
// folder). It checks that they fit together: the text encoder's width must be the UNet's
// cross_attention_dim, and the UNet's in and out channels the VAE's latent_channels. The Pipeline
// takes ownership of the models: Close closes them.
func New(c Components) (*Pipeline, error) {
	switch {
	case c.Tokenizer == nil:
		return nil, errors.New("pipeline: Components.Tokenizer is nil")
	case c.TextEncoder == nil:
		return nil, errors.New("pipeline: Components.TextEncoder is nil")
	case c.UNet == nil:
		return nil, errors.New("pipeline: Components.UNet is nil")
	case c.VAE == nil:
		return nil, errors.New("pipeline: Components.VAE is nil")
	}
	tc, uc, vc := c.TextEncoder.Config(), c.UNet.Config(), c.VAE.Config()
	for i := range uc.DownBlockTypes {
		if d := uc.CrossAttentionDim.At(i); d != tc.HiddenSize {
			return nil, fmt.Errorf("pipeline: the UNet's cross_attention_dim is %d but the text encoder's hidden_size is %d", d, tc.HiddenSize)
		}
	}
	if uc.InChannels != vc.LatentChannels || uc.OutChannels != vc.LatentChannels {
		return nil, fmt.Errorf("pipeline: the UNet's in_channels/out_channels are %d/%d but the VAE's latent_channels is %d",
			uc.InChannels, uc.OutChannels, vc.LatentChannels)
	}
	if e := c.VAEEncoder; e != nil && e.Config().LatentChannels != vc.LatentChannels {
		return nil, fmt.Errorf("pipeline: the VAE encoder's latent_channels is %d but the decoder's %d", e.Config().LatentChannels, vc.LatentChannels)
	}
	if vc.ScalingFactor == 0 {
		return nil, errors.New("pipeline: the VAE's scaling_factor is 0")
	}
	name := c.Scheduler
	if name == "" {
		name = "pndm"
	}
	if _, err := scheduler.New(name, c.SchedulerConfig); err != nil {
		return nil, fmt.Errorf("pipeline: default scheduler: %w", err)
	}
	p := &Pipeline{
		tok: c.Tokenizer, text: c.TextEncoder, unet: c.UNet, vae: c.VAE, sched: c.SchedulerConfig,
		defaultScheduler: name, name: c.Name, maxLength: tc.MaxPositionEmbeddings, enc: c.VAEEncoder,
		closer: c.Closer, tiny: c.TinyVAE, preview: c.PreviewDecoder, safety: c.SafetyChecker,
		closeDone: make(chan struct{}), keepMemory: c.KeepMemory,
	}
	if err := p.checkTiny(); err != nil {
		return nil, err
	}
	p.useCache(c.MemoryBudget)
	p.releaseLoadPages()
	return p, nil
}

// Option changes what Load loads.
type Option func(*loadOptions)

type loadOptions struct {
	variant   string
	half      bool
	precision Precision
	scheduler string
	hub       []hub.Option
	noSafety  bool // WithoutSafetyChecker

	configFrom string // WithConfigFrom
	budget     int64  // WithMemoryBudget
	keepMemory bool   // WithKeepMemory

	vae, preview string // WithVAE, WithPreviewDecoder (preview.go)
}

// WithVariant loads a weights variant, e.g. "fp16" (model.fp16.safetensors and the like, widened
// to float32 when read), for each component that has it; components without it load their
// default weights. A Hub download fetches the variant too.
func WithVariant(v string) Option { return func(o *loadOptions) { o.variant = v } }

// WithHalfWeights keeps the weight matrices of every Linear and Conv2d layer (almost all of a
// model's weights) as IEEE half precision in memory, halving weight memory; norms, biases,
// embeddings and all activations stay float32, and the arithmetic is float32 (the halves are
// widened while packing). With the fp16 variant (WithVariant("fp16")) the stored halves are used
// as they are (aliasing the mapped file), so results equal those of WithVariant("fp16") alone up to
// float32 rounding; float32 weights are rounded to half once, at load (to nearest even), which
// moves outputs by about 1e-3 relative, and the file's pages are released.
func WithHalfWeights() Option { return func(o *loadOptions) { o.half = true } }

// WithScheduler sets the scheduler used when a Request names none, instead of the one the model's
// scheduler config names. It is needed for a model whose scheduler class has no counterpart here.
func WithScheduler(name string) Option { return func(o *loadOptions) { o.scheduler = name } }

// WithHubOptions passes options to hub.Download when Load is given a repository id (progress
// reporting, cache folder, revision, token, offline mode, …).
func WithHubOptions(opts ...hub.Option) Option {
	return func(o *loadOptions) { o.hub = append(o.hub, opts...) }
}

// Load is LoadContext with context.Background().
func Load(model string, opts ...Option) (*Pipeline, error) {
	return LoadContext(context.Background(), model, opts...)
}

// LoadContext loads the model: a folder in diffusers layout, or a Hub repository id such as
// "OFA-Sys/small-stable-diffusion-v0" (see hub.IsRepoID), which is downloaded to the Hub cache
// first; "" means DefaultModel. ctx cancels the download. The folder needs model_index.json
// and the tokenizer, text_encoder, unet, vae and scheduler components. When it also has
// safety_checker/ and feature_extractor/ folders, the safety checker is loaded and run on
// every image (see WithoutSafetyChecker); a Hub download fetches them unless it is off.
//
// model may also be a single-file SD 1.x checkpoint (.safetensors or .ckpt with the original
// LDM names, as most fine-tunes are shared; see package checkpoint): its configs are SD 1.x's
// with what the tensors show (layers_per_block, widths, …), the tokenizer is the built-in CLIP
// one (tokenizer.CLIP) and the scheduler SD 1.x's PNDM, unless WithConfigFrom names a diffusers
// folder or repository to take them from. SD 2.x and SDXL files are refused with an error
// saying so.
func LoadContext(ctx context.Context, model string, opts ...Option) (p *Pipeline, err error) {
	var o loadOptions
	for _, opt := range opts {
		opt(&o)
	}
	if model == "" {
		model = DefaultModel
	}
	if isFile(model) {
		return loadSingleFile(ctx, model, o)
	}
	dir, name := model, filepath.Base(filepath.Clean(model))
	if hub.IsRepoID(model) {
		hopts := o.hub
		if o.variant != "" {
			hopts = append(append([]hub.Option{}, hopts...), hub.WithVariant(o.variant))
		}
		hopts = append(append([]hub.Option{}, hopts...), hub.WithSafetyChecker(!o.noSafety))
		d, err := hub.Download(ctx, model, hopts...)
		if err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		dir, name = d, path.Base(model)
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("pipeline: model folder: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("pipeline: model %s is not a folder", dir)
	}
	m, err := weights.OpenModel(dir)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	l := loader{m: m, variant: o.variant, half: o.half, bf16: o.precision == BF16}
	c := Components{Name: name, Scheduler: o.scheduler, MemoryBudget: o.budget, KeepMemory: o.keepMemory}
	defer func() {
		if err != nil { // release whatever was loaded before the failure (err is the result)
			closeAll(c.TextEncoder, c.UNet, c.VAE)
			closeSafety(c.SafetyChecker)
		}
	}()
	if c.Tokenizer, err = l.tokenizer(); err != nil {
		return nil, err
	}
	if c.TextEncoder, err = l.textEncoder(); err != nil {
		return nil, err
	}
	if c.UNet, err = l.unet(); err != nil {
		return nil, err
	}
	if c.VAE, err = l.vae(); err != nil {
		return nil, err
	}
	if c.SafetyChecker, err = l.safetyChecker(o); err != nil {
		return nil, err
	}
	var class string
	if c.SchedulerConfig, class, err = l.scheduler(); err != nil {
		return nil, err
	}
	if c.Scheduler == "" {
		if c.Scheduler, err = SchedulerForClass(class, c.SchedulerConfig); err != nil {
			return nil, fmt.Errorf("pipeline: %s: %w (choose one with WithScheduler)", dir, err)
		}
	}
	p, err = New(c)
	if err != nil {
		return nil, err
	}
	p.loadEnc = l.vaeEncoder
	return o.withVAEs(ctx, p)
}

// Name returns the model's name: the repository name for a Hub model (e.g.
// "small-stable-diffusion-v0"), else the folder's base name, or Components.Name.
func (p *Pipeline) Name() string { return p.name }

// DefaultScheduler returns the name of the scheduler a Request without one uses.
func (p *Pipeline) DefaultScheduler() string { return p.defaultScheduler }

// DefaultSize returns the image size a Request without one gets: the UNet's sample_size times
// the VAE's upscale factor (512×512 for SD 1.x), as diffusers does.
func (p *Pipeline) DefaultSize() (width, height int) {
	s := p.unet.Config().SampleSize * p.vae.Config().UpscaleFactor()
	return s, s
}

// Close releases the models and their weight files. Generations in progress return ErrClosed
// at their next step (a model call in flight is cancelled, and Close waits for it, so no
// weights go away under a running kernel); later calls return ErrClosed. Close may be called
// from a Progress callback. It is idempotent: later calls wait for the first and return its
// result.
func (p *Pipeline) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.closeDone
		return p.closeErr
	}
	p.closed = true
	p.mu.Unlock()
	err := errors.Join(closeAll(p.text, p.unet, p.vae), p.closeTiny(), closeSafety(p.safety))
	p.encMu.Lock()
	if p.enc != nil {
		err = errors.Join(err, p.enc.Close())
	}
	p.encMu.Unlock()
	if p.closer != nil {
		err = errors.Join(err, p.closer.Close())
	}
	p.closeErr = err
	close(p.closeDone)
	return err
}

// isClosed reports whether Close has been called.
func (p *Pipeline) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func closeAll(text *clip.TextModel, u *unet.Model, d *vae.Decoder) error {
	var errs []error
	if text != nil {
		errs = append(errs, text.Close())
	}
	if u != nil {
		errs = append(errs, u.Close())
	}
	if d != nil {
		errs = append(errs, d.Close())
	}
	return errors.Join(errs...)
}
