package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/lora"
	"gorgonia.org/tensor"
)

// LoRA is one adapter applied to a Request: a LoRA file in kohya's or diffusers' format (see
// lora.Load), or an adapter already loaded, at a scale. Each patched layer computes
// W·x + b + Scale·(alpha/rank)·up(down(x)), in the UNet and the text encoder alike (as diffusers
// 0.21.4 does with cross_attention_kwargs={"scale": Scale}, but for this request only). The
// low-rank path runs in the graph: the weights are never modified, so requests with and without
// adapters can run side by side.
type LoRA struct {
	// Path is a LoRA file, read on first use and kept by the Pipeline for later requests.
	Path string
	// Adapter is a loaded adapter; it takes precedence over Path.
	Adapter *lora.Adapter
	// Scale multiplies the adapter's effect: 1 is full strength, 0 leaves it out.
	Scale float64
}

// Name returns the adapter's name as the web UI's <lora:name:scale> writes it: the file's base
// name without extension.
func (l LoRA) Name() string {
	if l.Adapter != nil {
		return l.Adapter.Name
	}
	b := filepath.Base(l.Path)
	return strings.TrimSuffix(b, filepath.Ext(b))
}

// PromptTags returns the adapters as AUTOMATIC1111's web UI writes them into a prompt:
// " <lora:name:0.7>" for each, to append to the prompt in the PNG parameters.
func PromptTags(loras []LoRA) string {
	var b strings.Builder
	for _, l := range loras {
		fmt.Fprintf(&b, " <lora:%s:%s>", l.Name(), strconv.FormatFloat(l.Scale, 'g', -1, 64))
	}
	return b.String()
}

// loraCache holds the adapters read from files, by path.
type loraCache struct {
	mu sync.Mutex
	m  map[string]*lora.Adapter
}

func (c *loraCache) load(path string) (*lora.Adapter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.m[path]; a != nil {
		return a, nil
	}
	a, err := lora.Load(path)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*lora.Adapter{}
	}
	c.m[path] = a
	return a, nil
}

// requestLoRA is a request's adapters combined per model.
type requestLoRA struct {
	unet, text lora.Updates
}

// updates returns the updates of component; nil (no adapters) for a nil receiver.
func (r *requestLoRA) updates(component string) lora.Updates {
	if r == nil {
		return nil
	}
	if component == lora.UNet {
		return r.unet
	}
	return r.text
}

// resolveLoRAs loads r's adapters and combines them; errors name the entry.
func (p *Pipeline) resolveLoRAs(r *Request) error {
	r.lora = nil
	if len(r.LoRAs) == 0 {
		return nil
	}
	r.LoRAs = slices.Clone(r.LoRAs) // adapters are filled in below; the caller's slice stays as it was
	var scaled []lora.Scaled
	for i, l := range r.LoRAs {
		if math.IsNaN(l.Scale) || math.IsInf(l.Scale, 0) {
			return fmt.Errorf("pipeline: Request.LoRAs[%d].Scale %v is not a finite number", i, l.Scale)
		}
		a := l.Adapter
		if a == nil {
			if l.Path == "" {
				return fmt.Errorf("pipeline: Request.LoRAs[%d] has neither Path nor Adapter", i)
			}
			var err error
			if a, err = p.loras.load(l.Path); err != nil {
				return fmt.Errorf("pipeline: Request.LoRAs[%d]: %w", i, err)
			}
			r.LoRAs[i].Adapter = a
		}
		scaled = append(scaled, lora.Scaled{Adapter: a, Scale: l.Scale})
	}
	var rl requestLoRA
	var err error
	if rl.unet, err = lora.Combine(lora.UNet, scaled...); err != nil {
		return fmt.Errorf("pipeline: Request.LoRAs: %w", err)
	}
	if rl.text, err = lora.Combine(lora.TextEncoder, scaled...); err != nil {
		return fmt.Errorf("pipeline: Request.LoRAs: %w", err)
	}
	if len(rl.unet) > 0 || len(rl.text) > 0 {
		r.lora = &rl
	}
	return nil
}

// loraEncoder is the text encoder with a request's updates, as prompt.Encoder.
type loraEncoder struct {
	m *clip.TextModel
	u lora.Updates
}

func (e loraEncoder) Encode(ctx context.Context, ids [][]int) (*tensor.Dense, error) {
	return e.m.EncodeLoRA(ctx, ids, e.u)
}

// encoder returns the text encoder with the request's text-encoder updates (none for nil).
func (r *requestLoRA) encoder(m *clip.TextModel) loraEncoder {
	return loraEncoder{m: m, u: r.updates(lora.TextEncoder)}
}

// LoRATag is one <lora:name:scale> tag of an AUTOMATIC1111 prompt.
type LoRATag struct {
	Name  string
	Scale float64
}

var loraTagRE = regexp.MustCompile(`<lora:([^<>]*)>`)

// ParseLoRATags removes the web UI's LoRA tags — <lora:name> (scale 1) and <lora:name:scale> —
// from prompt and returns the rest and the tags, in order. The caller finds the files (the web
// UI looks in its models/Lora folder). A tag without a name or with a scale that is not a
// number is an error quoting it.
func ParseLoRATags(prompt string) (string, []LoRATag, error) {
	var tags []LoRATag
	var err error
	clean := loraTagRE.ReplaceAllStringFunc(prompt, func(tag string) string {
		body := strings.TrimSuffix(strings.TrimPrefix(tag, "<lora:"), ">")
		t := LoRATag{Name: body, Scale: 1}
		if i := strings.LastIndexByte(body, ':'); i >= 0 {
			v, perr := strconv.ParseFloat(strings.TrimSpace(body[i+1:]), 64)
			if perr != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				err = errors.Join(err, fmt.Errorf("LoRA tag %s: the scale is not a number", tag))
			}
			t.Name, t.Scale = body[:i], v
		}
		t.Name = strings.TrimSpace(t.Name)
		if t.Name == "" {
			err = errors.Join(err, fmt.Errorf("LoRA tag %s has no name", tag))
		}
		tags = append(tags, t)
		return ""
	})
	if err != nil {
		return prompt, nil, err
	}
	return clean, tags, nil
}
