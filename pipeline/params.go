package pipeline

import (
	"strconv"

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
// "Denoising strength"; for a batch of more than one image "Batch size" and "Batch pos" (i), as
// the web UI writes them. The request's LoRAs are appended to the prompt as <lora:name:scale>
// (PromptTags), as the web UI's prompts carry them.
func (r *Result) Parameters(i int) pngmeta.Parameters {
	q := r.Request
	p := pngmeta.Parameters{
		Prompt: q.Prompt + PromptTags(q.LoRAs), NegativePrompt: q.NegativePrompt, Steps: q.Steps,
		Sampler: SamplerName(q.Scheduler), CFGScale: q.GuidanceScale, Seed: q.Seed,
		Width: q.Width, Height: q.Height, Model: r.Model,
	}
	if q.Init != nil {
		p.Extra = append(p.Extra, pngmeta.Field{Key: "Denoising strength", Value: pngmeta.FormatFloat(q.Strength)})
	}
	if len(r.Images) > 1 {
		p.Extra = append(p.Extra, []pngmeta.Field{
			{Key: "Batch size", Value: strconv.Itoa(len(r.Images))},
			{Key: "Batch pos", Value: strconv.Itoa(i)},
		}...)
	}
	return p
}
