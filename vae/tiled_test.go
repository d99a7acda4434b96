package vae

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"gorgonia.org/tensor"
)

// refTiledDecode transliterates diffusers' AutoencoderKL.tiled_decode for one sample (lc×h×w):
// decode every tile, then blend each with its (already blended) upper and left neighbours in
// float64, crop and concatenate. Tiles are [channel][row][column].
func refTiledDecode(t *testing.T, d *Decoder, lat []float32, lc, h, w, tl, ts int, ov float64) [][][]float64 {
	overlapSize := int(float64(tl) * (1 - ov))
	blendExtent := int(float64(ts) * ov)
	rowLimit := ts - blendExtent
	var rows [][][][][]float64
	for i := 0; i < h; i += overlapSize {
		var row [][][][]float64
		for j := 0; j < w; j += overlapSize {
			th, tw := min(tl, h-i), min(tl, w-j)
			crop := make([]float32, 0, lc*th*tw)
			for c := 0; c < lc; c++ {
				for y := i; y < i+th; y++ {
					crop = append(crop, lat[(c*h+y)*w+j:(c*h+y)*w+j+tw]...)
				}
			}
			dec, err := d.Decode(context.Background(), tensor.New(tensor.WithShape(1, lc, th, tw), tensor.WithBacking(crop)))
			if err != nil {
				t.Fatal(err)
			}
			s := dec.Shape()
			v := f32(dec)
			tile := make([][][]float64, s[1])
			for c := range tile {
				tile[c] = make([][]float64, s[2])
				for y := range tile[c] {
					tile[c][y] = make([]float64, s[3])
					for x := range tile[c][y] {
						tile[c][y][x] = float64(v[(c*s[2]+y)*s[3]+x])
					}
				}
			}
			row = append(row, tile)
		}
		rows = append(rows, row)
	}
	blendV := func(a, b [][][]float64, e int) {
		e = min(len(a[0]), len(b[0]), e)
		for c := range b {
			for y := 0; y < e; y++ {
				for x := range b[c][y] {
					b[c][y][x] = a[c][len(a[c])-e+y][x]*(1-float64(y)/float64(e)) + b[c][y][x]*(float64(y)/float64(e))
				}
			}
		}
	}
	blendH := func(a, b [][][]float64, e int) {
		e = min(len(a[0][0]), len(b[0][0]), e)
		for c := range b {
			for y := range b[c] {
				for x := 0; x < e; x++ {
					b[c][y][x] = a[c][y][len(a[c][y])-e+x]*(1-float64(x)/float64(e)) + b[c][y][x]*(float64(x)/float64(e))
				}
			}
		}
	}
	var result [][][]float64 // [c][y][x], rows appended
	for i, row := range rows {
		var band [][][]float64
		for j, tile := range row {
			if i > 0 {
				blendV(rows[i-1][j], tile, blendExtent)
			}
			if j > 0 {
				blendH(row[j-1], tile, blendExtent)
			}
			if band == nil {
				band = make([][][]float64, len(tile))
				for c := range band {
					band[c] = make([][]float64, min(rowLimit, len(tile[c])))
				}
			}
			for c := range tile {
				for y := range band[c] {
					band[c][y] = append(band[c][y], tile[c][y][:min(rowLimit, len(tile[c][y]))]...)
				}
			}
		}
		if result == nil {
			result = make([][][]float64, len(band))
		}
		for c := range band {
			result[c] = append(result[c], band[c]...)
		}
	}
	return result
}

func TestDecodeTiled(t *testing.T) {
	d := loadTiny(t, "tiny-sd")
	const n, lc, h, w = 2, 4, 24, 40
	lat := make([]float32, n*lc*h*w)
	for i := range lat {
		lat[i] = float32(math.Sin(float64(i)*0.37) + 0.3*math.Cos(float64(i)*0.011))
	}
	got, err := d.DecodeTiled(context.Background(), tensor.New(tensor.WithShape(n, lc, h, w), tensor.WithBacking(lat)), TileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (tensor.Shape{n, 3, 8 * h, 8 * w}); !got.Shape().Eq(want) {
		t.Fatalf("shape %v, want %v", got.Shape(), want)
	}
	tl, ts := d.Config().TileLatentSize(), d.Config().SampleSize
	g := f32(got)
	oh, ow := 8*h, 8*w
	for s := 0; s < n; s++ {
		ref := refTiledDecode(t, d, lat[s*lc*h*w:(s+1)*lc*h*w], lc, h, w, tl, ts, 0.25)
		if len(ref[0]) != oh || len(ref[0][0]) != ow {
			t.Fatalf("reference is %d×%d, want %d×%d", len(ref[0]), len(ref[0][0]), oh, ow)
		}
		var maxErr float64
		for c := range ref {
			for y := range ref[c] {
				for x, v := range ref[c][y] {
					maxErr = math.Max(maxErr, math.Abs(float64(g[((s*3+c)*oh+y)*ow+x])-v))
				}
			}
		}
		// 3.2e-7 measured
		golden.Within(t, fmt.Sprintf("sample %d: tiled decode (%d-latent tiles) vs the float64 transliteration", s, tl), "max abs", maxErr, 4e-6)
	}

	// Odd sizes, other tiles and overlap: the output size is whatever diffusers' cropping gives.
	const h2, w2, tl2, ov2 = 21, 13, 10, 0.3
	odd := tensor.New(tensor.WithShape(1, lc, h2, w2), tensor.WithBacking(lat[:lc*h2*w2]))
	got2, err := d.DecodeTiled(context.Background(), odd, TileOptions{TileLatent: tl2, Overlap: ov2})
	if err != nil {
		t.Fatal(err)
	}
	ref2 := refTiledDecode(t, d, lat[:lc*h2*w2], lc, h2, w2, tl2, 8*tl2, ov2)
	if s := got2.Shape(); s[2] != len(ref2[0]) || s[3] != len(ref2[0][0]) {
		t.Fatalf("odd tiling: shape %v, reference %d×%d", s, len(ref2[0]), len(ref2[0][0]))
	}
	var maxErr float64
	for c := range ref2 {
		for y := range ref2[c] {
			for x, v := range ref2[c][y] {
				maxErr = math.Max(maxErr, math.Abs(float64(f32(got2)[(c*len(ref2[c])+y)*len(ref2[c][y])+x])-v))
			}
		}
	}
	t.Logf("%d×%d latents in %d-latent tiles, overlap %v: output %v", h2, w2, tl2, ov2, got2.Shape())
	golden.Within(t, "odd tiling", "max abs", maxErr, 4e-6) // 3.1e-7 measured

	// Latents that fit in one tile decode untiled.
	small := tensor.New(tensor.WithShape(1, lc, tl, tl-3), tensor.WithBacking(lat[:lc*tl*(tl-3)]))
	a, err := d.DecodeTiled(context.Background(), small, TileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Decode(context.Background(), small)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range f32(b) {
		if f32(a)[i] != v {
			t.Fatal("a latent of one tile decodes differently tiled")
		}
	}
	if _, err := d.DecodeTiled(context.Background(), small, TileOptions{Overlap: 1.5}); err == nil {
		t.Error("overlap 1.5: no error")
	}
}
