package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/smallsd/smallsd/checkpoint"
	"github.com/smallsd/smallsd/clip"
	"github.com/smallsd/smallsd/hub"
	"github.com/smallsd/smallsd/scheduler"
	"github.com/smallsd/smallsd/tokenizer"
	"github.com/smallsd/smallsd/unet"
	"github.com/smallsd/smallsd/vae"
	"github.com/smallsd/smallsd/weights"
)

// WithConfigFrom takes the configs of a single-file checkpoint's models, its tokenizer and its
// scheduler config from a diffusers model folder or Hub repository id (of which only those small
// files are downloaded, not the weights) instead of SD 1.x's defaults and what the tensors show. Use it for a
// checkpoint whose attention heads, norm groups or scheduler differ from SD 1.x's. It has no
// effect on a model folder or repository.
func WithConfigFrom(dirOrRepo string) Option {
	return func(o *loadOptions) { o.configFrom = dirOrRepo }
}

// sd1Scheduler is the scheduler config of every SD 1.x release (PNDM, scaled-linear betas).
const sd1Scheduler = `{"_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012,
 "beta_schedule": "scaled_linear", "num_train_timesteps": 1000, "set_alpha_to_one": false,
 "skip_prk_steps": true, "steps_offset": 1, "clip_sample": false}`

// isFile reports whether model names an existing regular file (a single-file checkpoint).
func isFile(model string) bool {
	st, err := os.Stat(model)
	return err == nil && st.Mode().IsRegular()
}

// loadSingleFile loads a single-file SD 1.x checkpoint (see checkpoint.Open).
func loadSingleFile(ctx context.Context, path string, o loadOptions) (p *Pipeline, err error) {
	var wopts []weights.Option
	if o.half {
		wopts = append(wopts, weights.WithHalf())
	}
	if o.precision == BF16 {
		wopts = append(wopts, weights.WithBF16())
	}
	f, err := checkpoint.Open(path, wopts...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: model %s is not a folder; read as a single-file checkpoint: %w", path, err)
	}
	base := filepath.Base(path)
	c := Components{Name: strings.TrimSuffix(base, filepath.Ext(base)), Scheduler: o.scheduler, Closer: f, MemoryBudget: o.budget, KeepMemory: o.keepMemory}
	defer func() {
		if err != nil {
			closeAll(c.TextEncoder, c.UNet, c.VAE)
			f.Close()
		}
	}()
	var (
		uc    unet.Config
		vc    vae.Config
		tc    clip.Config
		class = "PNDMScheduler"
	)
	if o.configFrom != "" {
		dir := o.configFrom
		if hub.IsRepoID(dir) && !isDir(dir) {
			if dir, err = hub.Download(ctx, dir, append(append([]hub.Option{}, o.hub...), hub.WithConfigsOnly())...); err != nil {
				return nil, fmt.Errorf("pipeline: configs: %w", err)
			}
		}
		m, err := weights.OpenModel(dir)
		if err != nil {
			return nil, fmt.Errorf("pipeline: configs: %w", err)
		}
		l := loader{m: m}
		if c.Tokenizer, err = l.tokenizer(); err != nil {
			return nil, err
		}
		if c.SchedulerConfig, class, err = l.scheduler(); err != nil {
			return nil, err
		}
		for _, r := range []struct {
			name string
			read func(string) error
		}{
			{"unet", func(d string) (err error) { uc, err = unet.LoadConfig(d); return }},
			{"vae", func(d string) (err error) { vc, err = vae.LoadConfig(d); return }},
			{"text_encoder", func(d string) (err error) { tc, err = clip.LoadConfig(d); return }},
		} {
			d, err := l.component(r.name)
			if err != nil {
				return nil, err
			}
			if err := r.read(d); err != nil {
				return nil, fmt.Errorf("pipeline: configs: %w", err)
			}
		}
	} else {
		if uc, err = f.UNetConfig(); err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		if vc, err = f.VAEConfig(); err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		if tc, err = f.TextEncoderConfig(); err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		if c.Tokenizer, err = tokenizer.CLIP(); err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		if c.SchedulerConfig, err = scheduler.ParseConfig([]byte(sd1Scheduler)); err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
	}
	if n := c.Tokenizer.VocabSize(); n > tc.VocabSize {
		return nil, fmt.Errorf("pipeline: %s: the text encoder's vocabulary has %d tokens but the tokenizer %d: "+
			"not SD 1.x's CLIP; give the model's configs and tokenizer with WithConfigFrom (-config)", path, tc.VocabSize, n)
	}
	if c.TextEncoder, err = clip.New(tc, f.TextEncoder()); err != nil {
		return nil, fmt.Errorf("pipeline: %s: text encoder: %w", path, err)
	}
	if err = f.CheckUnused("text_encoder", "text_model.embeddings.position_ids"); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	if c.UNet, err = unet.New(uc, f.UNet()); err != nil {
		return nil, fmt.Errorf("pipeline: %s: unet: %w", path, err)
	}
	if err = f.CheckUnused("unet"); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	if c.VAE, err = vae.NewDecoder(vc, f.VAE()); err != nil {
		return nil, fmt.Errorf("pipeline: %s: vae: %w", path, err)
	}
	if c.Scheduler == "" {
		if c.Scheduler, err = SchedulerForClass(class, c.SchedulerConfig); err != nil {
			return nil, fmt.Errorf("pipeline: %s: %w (choose one with WithScheduler)", path, err)
		}
	}
	if p, err = New(c); err != nil {
		return nil, err
	}
	p.loadEnc = func() (*vae.Encoder, error) { return vae.NewEncoder(vc, f.VAE()) }
	return o.withVAEs(ctx, p)
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
