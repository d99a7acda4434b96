package safety

import (
	"context"
	"fmt"
	"image"
	"math"
	"strings"

	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Checker is diffusers' StableDiffusionSafetyChecker (v0.21.4) with the CLIPImageProcessor
// that feeds it: CLIP's vision tower and visual_projection embed an image, and the embedding's
// cosine similarity with each hidden concept embedding, less the concept's threshold, decides
// whether the image is flagged. A Checker is safe for concurrent use.
type Checker struct {
	cfg   Config
	proc  ProcessorConfig
	store *weights.Store // owned when built by Load

	Vision           *clip.VisionModel
	VisualProjection *nn.Linear // hidden_size → projection_dim, no bias

	// The concept embeddings, normalised as cosine_distance normalises them, and their
	// thresholds (concept_embeds_weights, special_care_embeds_weights).
	concepts, special  [][]float32
	conceptT, specialT []float32
	runner             *nn.Runner
}

// ErrClosed is returned (wrapped) by every call on a closed Checker; it is the same value as
// pipeline.ErrClosed and the model packages' ErrClosed.
var ErrClosed = nn.ErrClosed

// New builds the checker described by cfg from the weights under w (a safety_checker
// component's tensors, named as diffusers names them: vision_model.vision_model…,
// visual_projection.weight, concept_embeds, special_care_embeds, concept_embeds_weights,
// special_care_embeds_weights) and the image processor proc. The numbers of concepts and
// special-care concepts are those of the checkpoint (17 and 3 in the real one). The vision
// tower must take crop_size images.
func New(cfg Config, proc ProcessorConfig, w weights.View) (*Checker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := proc.Validate(); err != nil {
		return nil, err
	}
	vc := cfg.VisionConfig
	if !proc.DoCenterCrop || proc.CropSize.Height != vc.ImageSize || proc.CropSize.Width != vc.ImageSize {
		return nil, fmt.Errorf("safety: the image processor's crop_size %d×%d (do_center_crop %v) does not give the vision tower's image_size %d",
			proc.CropSize.Height, proc.CropSize.Width, proc.DoCenterCrop, vc.ImageSize)
	}
	c := &Checker{cfg: cfg, proc: proc}
	var err error
	if c.Vision, err = clip.NewVisionModel(vc, w.Sub("vision_model")); err != nil {
		return nil, err
	}
	if c.VisualProjection, err = nn.NewLinear(w.Sub("visual_projection"), vc.HiddenSize, cfg.ProjectionDim, false); err != nil {
		return nil, err
	}
	if c.concepts, c.conceptT, err = readConcepts(w, "concept_embeds", 17, cfg.ProjectionDim); err != nil {
		return nil, err
	}
	if c.special, c.specialT, err = readConcepts(w, "special_care_embeds", 3, cfg.ProjectionDim); err != nil {
		return nil, err
	}
	c.runner = nn.NewRunner("safety checker", c.build)
	return c, nil
}

// readConcepts reads name (n×dim, n taken from the checkpoint) and name_weights (n), and
// returns the embeddings normalised (F.normalize) and the thresholds. A source that does not
// know shapes (a shape recorder) gets diffusers' count n0.
func readConcepts(w weights.View, name string, n0, dim int) ([][]float32, []float32, error) {
	if !w.Has(name) {
		_, err := w.Tensor(name) // the store's error names the tensor and file
		return nil, nil, err
	}
	n := n0
	if shape, ok := w.Shape(name); ok {
		if len(shape) != 2 || shape[0] < 1 || shape[0] > 1<<16 || shape[1] != dim {
			return nil, nil, fmt.Errorf("safety: tensor %s has shape %v; want n×%d (projection_dim)", name, shape, dim)
		}
		n = shape[0]
	}
	e, err := w.Tensor(name, n, dim)
	if err != nil {
		return nil, nil, err
	}
	t, err := w.Tensor(name+"_weights", n)
	if err != nil {
		return nil, nil, err
	}
	if e.Dtype() != tensor.Float32 || t.Dtype() != tensor.Float32 {
		return nil, nil, fmt.Errorf("safety: tensors %s and %s_weights must be float32", name, name)
	}
	data := e.Float32s()
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = normalize(data[i*dim : (i+1)*dim])
	}
	return rows, append([]float32(nil), t.Float32s()...), nil
}

// normalize is F.normalize(v, dim=-1): v / max(‖v‖₂, 1e-12), in float32.
func normalize(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	n := max(float32(math.Sqrt(s)), 1e-12)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = x / n
	}
	return out
}

// positionIDs is the buffer real checkpoints may carry; it holds no weights.
const positionIDs = "vision_model." + clip.VisionPositionIDs

// Load reads the safety_checker folder (config.json and weights: safetensors or PyTorch .bin;
// opts as for weights.Open: a variant, half weights) and the feature_extractor folder
// (preprocessor_config.json), and builds the checker. Tensors the checker does not use are an
// error, except a position_ids buffer. The weights file stays open until Close.
func Load(checkerDir, featureExtractorDir string, opts ...weights.Option) (*Checker, error) {
	cfg, err := LoadConfig(checkerDir)
	if err != nil {
		return nil, err
	}
	proc, err := LoadProcessorConfig(featureExtractorDir)
	if err != nil {
		return nil, err
	}
	s, err := weights.Open(checkerDir, opts...)
	if err != nil {
		return nil, err
	}
	c, err := fromStore(cfg, proc, s)
	if err != nil {
		s.Close()
		return nil, err
	}
	return c, nil
}

// fromStore builds the checker from all of s's tensors (but a position_ids buffer) and owns s.
func fromStore(cfg Config, proc ProcessorConfig, s *weights.Store) (*Checker, error) {
	c, err := New(cfg, proc, s.View())
	if err != nil {
		return nil, err
	}
	if err := s.CheckAllUsed(positionIDs); err != nil {
		return nil, fmt.Errorf("safety: %w", err)
	}
	c.store = s
	return c, nil
}

// Config returns the checker's configuration.
func (c *Checker) Config() Config { return c.cfg }

// ProcessorConfig returns the image processor's configuration.
func (c *Checker) ProcessorConfig() ProcessorConfig { return c.proc }

// Runner returns the runner the checker's calls go through (for sharing a cache with other
// models).
func (c *Checker) Runner() *nn.Runner { return c.runner }

// ReleaseWeightPages takes the pages of the weights file the Checker mapped (when made by Load)
// out of the process's resident memory until it next reads them (weights.Store.ReleasePages):
// the pipeline does so between images. It stays usable; its next call faults the pages back
// in. It returns the bytes advised, 0 when the weights are not a mapped file of its own.
func (c *Checker) ReleaseWeightPages() int64 {
	if c.store == nil {
		return 0
	}
	return c.store.ReleasePages()
}

// Close waits for the checks in flight (cancelling them: they return ErrClosed), then releases
// the compiled programs and the weights file of a checker made by Load. Every later call
// returns ErrClosed; Close is idempotent.
func (c *Checker) Close() error {
	if err := c.runner.Close(); err != nil {
		return err
	}
	if c.store != nil {
		return c.store.Close()
	}
	return nil
}

// build compiles the forward for pixel values of the given shape: the vision tower's pooled
// output and image_embeds = visual_projection(pooled).
func (c *Checker) build(shapes ...tensor.Shape) (*nn.Program, error) {
	if len(shapes) != 1 {
		return nil, fmt.Errorf("safety: %d inputs; want the pixel values", len(shapes))
	}
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float32, len(shapes[0]), gorgonia.WithShape(shapes[0]...), gorgonia.WithName("pixel_values"))
	_, pooled, err := c.Vision.Forward(x)
	if err != nil {
		return nil, err
	}
	embeds, err := c.VisualProjection.Forward(pooled)
	if err != nil {
		return nil, err
	}
	return nn.Compile(g, []*gorgonia.Node{x}, []*gorgonia.Node{pooled, embeds})
}

// Embed runs the vision tower and the projection on pixel values (B×num_channels×image_size×
// image_size, as Preprocess gives them) and returns the pooled output (B×hidden_size) and
// image_embeds (B×projection_dim).
func (c *Checker) Embed(ctx context.Context, pixels *tensor.Dense) (pooled, embeds *tensor.Dense, err error) {
	vc := c.cfg.VisionConfig
	if s := pixels.Shape(); len(s) != 4 || s[0] < 1 || s[1] != vc.NumChannels || s[2] != vc.ImageSize || s[3] != vc.ImageSize {
		return nil, nil, fmt.Errorf("safety: pixel values of shape %v; want B×%d×%d×%d", s, vc.NumChannels, vc.ImageSize, vc.ImageSize)
	}
	outs, err := c.runner.Run(ctx, pixels)
	if err != nil {
		return nil, nil, err
	}
	return outs[0], outs[1], nil
}

// Preprocess is the image processor's preprocessing of one image (see
// ProcessorConfig.Preprocess) as a 1×3×H×W tensor.
func (c *Checker) Preprocess(img image.Image) (*tensor.Dense, error) {
	pix, h, w, err := c.proc.Preprocess(img)
	if err != nil {
		return nil, err
	}
	return tensor.New(tensor.WithShape(1, 3, h, w), tensor.WithBacking(pix)), nil
}

// Result is the checker's verdict on one image.
type Result struct {
	// NSFW is set when a concept's score is above its threshold: diffusers' has_nsfw_concepts.
	NSFW bool
	// Concepts are the indices (into concept_embeds) of the concepts that fired.
	Concepts []int
	// SpecialCare are the indices (into special_care_embeds) of the special-care concepts that
	// fired; when any did, every concept's threshold was lowered by 0.01.
	SpecialCare []int
}

// String describes the verdict by concept indices only (nothing about the embeddings).
func (r Result) String() string {
	if !r.NSFW && len(r.SpecialCare) == 0 {
		return "not flagged"
	}
	var b strings.Builder
	if r.NSFW {
		fmt.Fprintf(&b, "NSFW (concepts %v", r.Concepts)
	} else {
		b.WriteString("not flagged (")
	}
	if len(r.SpecialCare) > 0 {
		if r.NSFW {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "special care %v", r.SpecialCare)
	}
	b.WriteString(")")
	return b.String()
}

// round3 is numpy's round(x, 3) on a float64: rint(x·1000)/1000.
func round3(x float64) float64 { return math.RoundToEven(x*1000) / 1000 }

// cosine is one entry of cosine_distance: the normalised image embedding times a normalised
// concept embedding, as a float32.
func cosine(a, b []float32) float32 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return float32(s)
}

// Judge is StableDiffusionSafetyChecker.forward's decision for one image's image_embeds
// (projection_dim values): each score is round(cos − threshold + adjustment, 3) with the
// float32 cosine and threshold taken to float64 as numpy does; adjustment becomes 0.01 once a
// special-care score is positive (also for the special-care concepts after it); the image is
// NSFW when a concept's score is positive.
func (c *Checker) Judge(embeds []float32) (Result, error) {
	if len(embeds) != c.cfg.ProjectionDim {
		return Result{}, fmt.Errorf("safety: Judge: %d values; want projection_dim %d", len(embeds), c.cfg.ProjectionDim)
	}
	e := normalize(embeds)
	var r Result
	adjustment := 0.0
	for i, s := range c.special {
		if round3(float64(cosine(e, s))-float64(c.specialT[i])+adjustment) > 0 {
			r.SpecialCare = append(r.SpecialCare, i)
			adjustment = 0.01
		}
	}
	for i, s := range c.concepts {
		if round3(float64(cosine(e, s))-float64(c.conceptT[i])+adjustment) > 0 {
			r.Concepts = append(r.Concepts, i)
		}
	}
	r.NSFW = len(r.Concepts) > 0
	return r, nil
}

// Check preprocesses each image, embeds it and judges it, one image at a time.
func (c *Checker) Check(ctx context.Context, images []image.Image) ([]Result, error) {
	res := make([]Result, len(images))
	for i, img := range images {
		x, err := c.Preprocess(img)
		if err != nil {
			return nil, fmt.Errorf("safety: image %d: %w", i, err)
		}
		_, embeds, err := c.Embed(ctx, x)
		if err != nil {
			return nil, err
		}
		if res[i], err = c.Judge(embeds.Float32s()); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Filter checks the images and makes each flagged one black (RGB 0, opaque), in place, as
// diffusers returns them.
func (c *Checker) Filter(ctx context.Context, images []*image.NRGBA) ([]Result, error) {
	in := make([]image.Image, len(images))
	for i, img := range images {
		if img == nil {
			return nil, fmt.Errorf("safety: image %d is nil", i)
		}
		in[i] = img
	}
	res, err := c.Check(ctx, in)
	if err != nil {
		return nil, err
	}
	for i, r := range res {
		if r.NSFW {
			Black(images[i])
		}
	}
	return res, nil
}

// Black makes img black and opaque.
func Black(img *image.NRGBA) {
	b := img.Bounds()
	if b.Empty() {
		return
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := img.Pix[img.PixOffset(b.Min.X, y) : img.PixOffset(b.Max.X-1, y)+4]
		for i := 0; i < len(row); i += 4 {
			row[i], row[i+1], row[i+2], row[i+3] = 0, 0, 0, 255
		}
	}
}
