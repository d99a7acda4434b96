package pipeline

import (
	"fmt"
	"math"
)

// Upper bounds on a Request; larger values are errors naming the field. They keep a request from
// asking for more than any machine has (or overflowing a size) before the memory budget is even
// consulted.
const (
	// MaxSide is the largest Width or Height, in pixels.
	MaxSide = 4096
	// MaxNumImages is the largest NumImages.
	MaxNumImages = 16
	// MaxSteps is the largest Steps.
	MaxSteps = 1000
	// MaxGuidanceScale bounds |GuidanceScale|: beyond it the guided noise prediction leaves the
	// range float32 latents survive (1e30 gave NaN latents and a black image).
	MaxGuidanceScale = 100
	// MaxPromptBytes is the longest Prompt or NegativePrompt, in bytes (a prompt is cut to 75
	// tokens anyway; a megabyte still tokenises in well under a second).
	MaxPromptBytes = 4 << 20
)

// checkLimits reports the first field of r beyond its upper bound. It runs before defaults are
// filled in and before any size is multiplied.
func checkLimits(r Request) error {
	switch {
	case r.Width > MaxSide:
		return fmt.Errorf("pipeline: Request.Width %d is more than %d (MaxSide)", r.Width, MaxSide)
	case r.Height > MaxSide:
		return fmt.Errorf("pipeline: Request.Height %d is more than %d (MaxSide)", r.Height, MaxSide)
	case r.NumImages > MaxNumImages:
		return fmt.Errorf("pipeline: Request.NumImages %d is more than %d (MaxNumImages)", r.NumImages, MaxNumImages)
	case r.Steps > MaxSteps:
		return fmt.Errorf("pipeline: Request.Steps %d is more than %d (MaxSteps)", r.Steps, MaxSteps)
	case math.IsNaN(r.GuidanceScale) || math.IsInf(r.GuidanceScale, 0):
		return fmt.Errorf("pipeline: Request.GuidanceScale %v is not a finite number", r.GuidanceScale)
	case math.Abs(r.GuidanceScale) > MaxGuidanceScale:
		return fmt.Errorf("pipeline: Request.GuidanceScale %v is outside [-%d, %d] (MaxGuidanceScale)", r.GuidanceScale, MaxGuidanceScale, MaxGuidanceScale)
	case len(r.Prompt) > MaxPromptBytes:
		return fmt.Errorf("pipeline: Request.Prompt is %d bytes, more than %d (MaxPromptBytes)", len(r.Prompt), MaxPromptBytes)
	case len(r.NegativePrompt) > MaxPromptBytes:
		return fmt.Errorf("pipeline: Request.NegativePrompt is %d bytes, more than %d (MaxPromptBytes)", len(r.NegativePrompt), MaxPromptBytes)
	}
	if r.Init != nil {
		if b := r.Init.Bounds(); b.Dx() > MaxSide || b.Dy() > MaxSide {
			return fmt.Errorf("pipeline: Request.Init is %dx%d pixels, more than %d on a side (MaxSide)", b.Dx(), b.Dy(), MaxSide)
		}
	}
	return nil
}
