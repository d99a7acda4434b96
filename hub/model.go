package hub

import (
	"context"
	"os"
	"path/filepath"
	"strings"
)

// A single-model repository (such as madebyollin/taesd, or a VAE repo like
// stabilityai/sd-vae-ft-mse) has no model_index.json: its config.json and weights sit at the top
// level, as one component folder of a pipeline would hold them. Download fetches those files,
// chosen as for a component (the variant if present, .safetensors before .bin), and returns the
// snapshot folder, which is then the model's folder.

// modelPlan picks a single-model repo's files from its listing. ok is false when the listing has
// no top-level config.json (not a single model either).
func modelPlan(listing []string, variant string) (p compPlan, ok bool) {
	var top []string
	for _, f := range listing {
		if !strings.Contains(f, "/") {
			top = append(top, f)
			ok = ok || f == "config.json"
		}
	}
	if !ok {
		return p, false
	}
	p = planComponent(component{name: "."}, top, variant)
	for i, f := range p.files {
		p.files[i] = strings.TrimPrefix(f, "./")
	}
	for i, f := range p.missing {
		p.missing[i] = strings.TrimPrefix(f, "./")
	}
	return p, true
}

// modelMissing is localMissing for a cached single-model snapshot (one with config.json and no
// model_index.json); ok is false for other snapshots.
func modelMissing(snap, noExistDir, variant string) (missing []string, ok bool) {
	if isFile(filepath.Join(snap, "model_index.json")) || !isFile(filepath.Join(snap, "config.json")) {
		return nil, false
	}
	p, _ := modelPlan(listFiles(snap), variant)
	missing = p.missing
	for _, w := range p.fallback {
		if n := variantName(w, variant); n == "" || !isFile(filepath.Join(noExistDir, n)) {
			missing = append(missing, w.name+" ("+variant+" variant not known to be absent)")
		}
	}
	return missing, true
}

// fetchModel fetches a single-model repo's planned files at commit and returns the snapshot.
func (d *downloader) fetchModel(ctx context.Context, commit string, p compPlan) (string, error) {
	if len(p.missing) > 0 {
		return "", &Error{Repo: d.repo, Revision: d.cfg.revision, Err: ErrNotFound,
			Msg:  "the repo lacks files the model needs: " + strings.Join(p.missing, ", "),
			Hint: "check that the repo holds a diffusers model (config.json and diffusion_pytorch_model.safetensors)"}
	}
	if err := d.ensure(ctx, commit, p.files); err != nil {
		return "", err
	}
	for _, w := range p.fallback { // as Download records absent variants of pipeline components
		if n := variantName(w, d.cfg.variant); n != "" {
			if os.MkdirAll(d.noExistDir(commit), 0o755) == nil {
				if fh, err := os.OpenFile(filepath.Join(d.noExistDir(commit), n), os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
					fh.Close()
				}
			}
		}
	}
	return d.snapshot(commit), nil
}
