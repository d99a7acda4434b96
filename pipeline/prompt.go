package pipeline

import (
	"context"
	"fmt"

	"github.com/smallsd/smallsd/prompt"
	"gorgonia.org/tensor"
)

// Prompt syntaxes for Request.PromptSyntax.
const (
	// PromptSyntaxDiffusers reads prompts as diffusers' StableDiffusionPipeline does: plain
	// text, cut to 75 tokens (the default, "").
	PromptSyntaxDiffusers = ""
	// PromptSyntaxA1111 reads prompts in the AUTOMATIC1111 syntax, as diffusers' community
	// lpw_stable_diffusion pipeline does (see package prompt): "(word)" ×1.1, "[word]" ÷1.1,
	// "(words:1.3)", escapes "\(", and up to 225 tokens in chunks of 75. The prompt and the
	// negative prompt are padded to the same number of chunks k and the UNet attends to 77·k
	// text positions. Each chunk costs one text-encoder pass (about 0.07 s for SD's, once per
	// image) and makes the UNet's cross-attention a little dearer.
	PromptSyntaxA1111 = "a1111"
)

// checkPromptSyntax reports an unknown Request.PromptSyntax.
func checkPromptSyntax(s string) error {
	if s != PromptSyntaxDiffusers && s != PromptSyntaxA1111 {
		return fmt.Errorf("pipeline: Request.PromptSyntax %q is unknown (known: %q, %q)", s, PromptSyntaxDiffusers, PromptSyntaxA1111)
	}
	return nil
}

// encodeWeighted returns the text encoder states of r's prompts read in the A1111 syntax:
// [negative, prompt] with guidance, else [prompt], each 77·k rows (lpw_stable_diffusion's
// get_weighted_text_embeddings(prompt, uncond_prompt=negative) with max_embeddings_multiples 3;
// without a negative prompt the unconditional half is the empty prompt's, as there).
func (p *Pipeline) encodeWeighted(ctx context.Context, r Request, cfg bool) (*tensor.Dense, error) {
	texts := []string{r.Prompt}
	if cfg {
		texts = []string{r.NegativePrompt, r.Prompt}
	}
	states, err := prompt.Embed(ctx, p.tok, r.lora.encoder(p.text), texts, prompt.Options{ChunkLength: p.maxLength})
	if err != nil {
		return nil, fmt.Errorf("pipeline: Request.Prompt (syntax %q): %w", r.PromptSyntax, err)
	}
	return states, nil
}
