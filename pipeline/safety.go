package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/smallsd/smallsd/safety"
)

// The safety checker, as diffusers' StableDiffusionPipeline runs it: on by default when the
// model folder has one, run on every image after decoding, flagged images returned black.

// WithoutSafetyChecker turns the safety checker off: images are returned as generated, and a
// Hub download skips the safety_checker and feature_extractor folders (about 1.2 GB for
// small-sd). Load logs a one-line warning (log/slog) when the model has a checker, as diffusers
// does when its safety_checker is None.
func WithoutSafetyChecker() Option { return func(o *loadOptions) { o.noSafety = true } }

// safetyChecker loads the model's safety checker: nil when the folder lacks safety_checker/ or
// feature_extractor/, or when o turns it off (with a warning if the model has one).
func (l loader) safetyChecker(o loadOptions) (*safety.Checker, error) {
	dir, fe := filepath.Join(l.m.Dir, "safety_checker"), filepath.Join(l.m.Dir, "feature_extractor")
	_, listed := l.m.Info("safety_checker")
	present := isDir(dir) && isDir(fe)
	if o.noSafety {
		if listed || present {
			slog.Warn("pipeline: the safety checker is off; abide by the model's license and do not expose unfiltered results in services or applications open to the public",
				"model", l.m.Dir)
		}
		return nil, nil
	}
	if !present {
		return nil, nil
	}
	if info, ok := l.m.Info("safety_checker"); ok && info.Class != "StableDiffusionSafetyChecker" {
		return nil, fmt.Errorf("pipeline: component safety_checker in %s is a %s; only StableDiffusionSafetyChecker is supported (or load WithoutSafetyChecker)",
			l.m.Dir, info.Class)
	}
	c, err := safety.Load(dir, fe, l.weightOpts(dir)...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: component safety_checker: %w", err)
	}
	return c, nil
}

// HasSafetyChecker reports whether the pipeline checks its images.
func (p *Pipeline) HasSafetyChecker() bool { return p.safety != nil }

// checkSafety runs the safety checker on res.Images, blackens the flagged ones and fills in
// res.NSFW, res.Safety and res.Timings.Safety; without a checker it does nothing.
func (p *Pipeline) checkSafety(ctx context.Context, res *Result) error {
	if p.safety == nil {
		return nil
	}
	start := time.Now()
	r, err := p.safety.Filter(ctx, res.Images)
	p.endStage(p.safety, false)
	if err != nil {
		return fmt.Errorf("pipeline: safety checker: %w", err)
	}
	res.Timings.Safety = time.Since(start)
	res.Safety = r
	res.NSFW = make([]bool, len(r))
	for i := range r {
		res.NSFW[i] = r[i].NSFW
	}
	return nil
}

// closeSafety closes the checker, if any.
func closeSafety(c *safety.Checker) error {
	if c == nil {
		return nil
	}
	return c.Close()
}
