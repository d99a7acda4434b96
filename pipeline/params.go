package pipeline

import (
	"strconv"
	"strings"

	"github.com/smallsd/smallsd/pipeline/pngmeta"
)

// Resolve returns req as Generate would run it — defaults filled in, a negative seed replaced by
// a random one, Progress kept — or the error Generate would give for it, naming the field. A
// server can use it to reject a bad request before queueing it; generating the resolved request
// gives the same images as the original one (with the seed Resolve chose).
func (p *Pipeline) Resolve(req Request) (Request, error) {
	return p.resolve(req)
}

// Parameters returns the generation parameters of image i of r in AUTOMATIC1111's form, as
// written into the PNG "parameters" chunk: prompt, negative prompt, steps, sampler (its web UI
// name, see SamplerName), CFG scale, seed, size and model; for image-to-image and inpainting
// "Denoising strength"; for a batch of more than one image also "Batch size" and "Batch pos"
// (i), as the web UI writes them.
func (r *Result) Parameters(i int) pngmeta.Parameters {
	q := r.Request
	p := pngmeta.Parameters{
		Prompt: q.Prompt, NegativePrompt: q.NegativePrompt, Steps: q.Steps,
		Sampler: SamplerName(q.Scheduler), CFGScale: q.GuidanceScale, Seed: q.Seed,
		Width: q.Width, Height: q.Height, Model: r.Model,
	}
	if q.Init != nil {
		p.Extra = append(p.Extra, pngmeta.Field{Key: "Denoising strength", Value: pyFloat(q.Strength)})
	}
	if len(r.Images) > 1 {
		p.Extra = append(p.Extra, []pngmeta.Field{
			{Key: "Batch size", Value: strconv.Itoa(len(r.Images))},
			{Key: "Batch pos", Value: strconv.Itoa(i)},
		}...)
	}
	return p
}

// pyFloat formats v as Python's str(float) does for the values a strength takes ("0.75", "1.0").
func pyFloat(v float64) string {
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}
