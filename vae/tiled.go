package vae

import (
	"context"
	"fmt"

	"gorgonia.org/tensor"
)

// TileOptions configures DecodeTiled. Zero values take diffusers' AutoencoderKL defaults.
type TileOptions struct {
	// TileLatent is the tile size in latents (tile_latent_min_size); 0 means
	// sample_size / UpscaleFactor (64 for SD 1.x, a 512×512 tile).
	TileLatent int
	// Overlap is the fraction of a tile shared with its neighbours (tile_overlap_factor);
	// 0 means 0.25.
	Overlap float64
}

// tile is one decoded tile (out_channels×h×w) of a sample.
type tile struct {
	h, w int
	data []float32
}

// DecodeTiled decodes like Decode but, when the latents are larger than a tile on either side,
// decodes overlapping tiles separately and blends them as diffusers' AutoencoderKL.tiled_decode
// does (enable_tiling): memory is bounded by one tile's program whatever the image size (edge
// tiles are smaller; with the default cache limit only one 64×64-tile program of SD's VAE is
// kept, and programs compile in milliseconds). The result is
// not the untiled decode (each tile's group norms and attention see only the tile); it matches
// diffusers' tiled output. Latents that fit in one tile are decoded untiled, as in diffusers.
func (d *Decoder) DecodeTiled(ctx context.Context, latents *tensor.Dense, opt TileOptions) (*tensor.Dense, error) {
	n, h, w, data, err := d.checkLatents(latents)
	if err != nil {
		return nil, err
	}
	f := d.cfg.UpscaleFactor()
	tl, ts := d.cfg.TileLatentSize(), d.cfg.SampleSize // tile_latent_min_size, tile_sample_min_size
	if opt.TileLatent != 0 {
		tl, ts = opt.TileLatent, opt.TileLatent*f
	}
	ov := opt.Overlap
	if ov == 0 {
		ov = 0.25
	}
	step := int(float64(tl) * (1 - ov)) // overlap_size
	blend := int(float64(ts) * ov)      // blend_extent
	limit := ts - blend                 // row_limit
	if tl < 1 || !(ov > 0 && ov < 1) || step < 1 || limit < 1 {
		return nil, fmt.Errorf("vae: tiling with %d-latent tiles and overlap %v (sample_size %d): tiles do not advance", tl, ov, d.cfg.SampleSize)
	}
	if h <= tl && w <= tl {
		return d.Decode(ctx, latents)
	}
	// Output size: the cropped tiles of one row (columns) and of one column (rows).
	outSize := func(size int) int {
		s := 0
		for i := 0; i < size; i += step {
			s += min(limit, f*min(tl, size-i))
		}
		return s
	}
	oc, oh, ow := d.cfg.OutChannels, outSize(h), outSize(w)
	out := make([]float32, n*oc*oh*ow)
	lc := d.cfg.LatentChannels
	for s := 0; s < n; s++ {
		sample := data[s*lc*h*w : (s+1)*lc*h*w]
		dst := out[s*oc*oh*ow : (s+1)*oc*oh*ow]
		var prev []tile
		y0 := 0
		for i := 0; i < h; i += step {
			var row []tile
			for j := 0; j < w; j += step {
				th, tw := min(tl, h-i), min(tl, w-j)
				t, err := d.decodeTile(ctx, sample, h, w, i, j, th, tw)
				if err != nil {
					return nil, err
				}
				// Blend with the tile above and the one to the left, both already blended
				// (diffusers blends its tiles in place, in this order).
				if prev != nil {
					blendV(prev[len(row)], t, oc, blend)
				}
				if len(row) > 0 {
					blendH(row[len(row)-1], t, oc, blend)
				}
				row = append(row, t)
			}
			// Crop each tile to limit×limit and place the row.
			rh := min(limit, row[0].h)
			x0 := 0
			for _, t := range row {
				cw := min(limit, t.w)
				for c := 0; c < oc; c++ {
					for y := 0; y < rh; y++ {
						src := t.data[(c*t.h+y)*t.w : (c*t.h+y)*t.w+cw]
						copy(dst[(c*oh+y0+y)*ow+x0:], src)
					}
				}
				x0 += cw
			}
			y0 += rh
			prev = row
		}
	}
	return tensor.New(tensor.WithShape(n, oc, oh, ow), tensor.WithBacking(out)), nil
}

// decodeTile decodes the th×tw latent window at (i, j) of one sample (lc×h×w).
func (d *Decoder) decodeTile(ctx context.Context, sample []float32, h, w, i, j, th, tw int) (tile, error) {
	lc, f := d.cfg.LatentChannels, d.cfg.UpscaleFactor()
	in := make([]float32, lc*th*tw)
	for c := 0; c < lc; c++ {
		for y := 0; y < th; y++ {
			copy(in[(c*th+y)*tw:(c*th+y+1)*tw], sample[(c*h+i+y)*w+j:])
		}
	}
	t := tile{h: f * th, w: f * tw}
	t.data = make([]float32, d.cfg.OutChannels*t.h*t.w)
	x := tensor.New(tensor.WithShape(1, lc, th, tw), tensor.WithBacking(in))
	return t, d.run(ctx, x, t.data)
}

// blendWeights returns diffusers' (1 - k/e, k/e) as the float32 scalars torch multiplies by.
func blendWeights(k, e int) (wa, wb float32) {
	r := float64(k) / float64(e)
	return float32(1 - r), float32(r)
}

// blendV is diffusers' blend_v: the first rows of b fade in from the last rows of a.
func blendV(a, b tile, channels, extent int) {
	e := min(a.h, b.h, extent)
	for c := 0; c < channels; c++ {
		for y := 0; y < e; y++ {
			wa, wb := blendWeights(y, e)
			ra := a.data[(c*a.h+a.h-e+y)*a.w:][:b.w]
			rb := b.data[(c*b.h+y)*b.w:][:b.w]
			for x := range rb {
				rb[x] = float32(ra[x]*wa) + float32(rb[x]*wb)
			}
		}
	}
}

// blendH is diffusers' blend_h: the first columns of b fade in from the last columns of a.
func blendH(a, b tile, channels, extent int) {
	e := min(a.w, b.w, extent)
	for c := 0; c < channels; c++ {
		for y := 0; y < b.h; y++ {
			ra := a.data[(c*a.h+y)*a.w:][:a.w]
			rb := b.data[(c*b.h+y)*b.w:][:b.w]
			for x := 0; x < e; x++ {
				wa, wb := blendWeights(x, e)
				rb[x] = float32(ra[a.w-e+x]*wa) + float32(rb[x]*wb)
			}
		}
	}
}
