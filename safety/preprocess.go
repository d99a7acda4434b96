package safety

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"github.com/smallsd/smallsd/internal/pilresize"
	"github.com/smallsd/smallsd/weights"
)

// Size is a size entry of preprocessor_config.json: {"shortest_edge": n}, {"height": h,
// "width": w}, or a bare number n (older configs), which sets all three.
type Size struct {
	ShortestEdge int `json:"shortest_edge"`
	Height       int `json:"height"`
	Width        int `json:"width"`
}

// UnmarshalJSON reads an object or a bare number.
func (s *Size) UnmarshalJSON(data []byte) error {
	var n int
	if json.Unmarshal(data, &n) == nil {
		*s = Size{ShortestEdge: n, Height: n, Width: n}
		return nil
	}
	type plain Size
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*s = Size(p)
	return nil
}

// ProcessorConfig is transformers' CLIPImageProcessor configuration (feature_extractor/
// preprocessor_config.json, v4.33 keys). Keys missing from the file take CLIPImageProcessor's
// defaults (DefaultProcessorConfig).
type ProcessorConfig struct {
	DoConvertRGB  bool      `json:"do_convert_rgb"`
	DoResize      bool      `json:"do_resize"`
	Size          Size      `json:"size"`     // shortest_edge is used
	Resample      int       `json:"resample"` // PIL filter number; 3 (bicubic) is supported
	DoCenterCrop  bool      `json:"do_center_crop"`
	CropSize      Size      `json:"crop_size"` // height and width are used
	DoRescale     bool      `json:"do_rescale"`
	RescaleFactor float64   `json:"rescale_factor"`
	DoNormalize   bool      `json:"do_normalize"`
	ImageMean     []float64 `json:"image_mean"`
	ImageStd      []float64 `json:"image_std"`
}

// DefaultProcessorConfig returns CLIPImageProcessor's defaults: shortest edge 224, bicubic,
// centre crop 224×224, rescale by 1/255, normalise with OpenAI CLIP's mean and std.
func DefaultProcessorConfig() ProcessorConfig {
	return ProcessorConfig{
		DoConvertRGB: true, DoResize: true, Size: Size{ShortestEdge: 224}, Resample: 3,
		DoCenterCrop: true, CropSize: Size{Height: 224, Width: 224},
		DoRescale: true, RescaleFactor: 1.0 / 255, DoNormalize: true,
		ImageMean: []float64{0.48145466, 0.4578275, 0.40821073},
		ImageStd:  []float64{0.26862954, 0.26130258, 0.27577711},
	}
}

// UnmarshalJSON reads a preprocessor_config.json: absent keys (and null values) keep
// DefaultProcessorConfig's values.
func (c *ProcessorConfig) UnmarshalJSON(data []byte) error {
	type plain ProcessorConfig
	cfg := plain(DefaultProcessorConfig())
	if err := json.Unmarshal(data, &cfg); err != nil {
		return err
	}
	*c = ProcessorConfig(cfg)
	return nil
}

// LoadProcessorConfig reads a preprocessor_config.json (the file, or the feature_extractor
// folder holding it) and validates it.
func LoadProcessorConfig(path string) (ProcessorConfig, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "preprocessor_config.json")
	}
	var c ProcessorConfig
	if err := weights.ReadConfig(path, &c); err != nil {
		return ProcessorConfig{}, err
	}
	if err := c.Validate(); err != nil {
		return ProcessorConfig{}, fmt.Errorf("%w (in %s)", err, path)
	}
	return c, nil
}

// Validate reports the first value this package cannot use, naming its key.
func (c ProcessorConfig) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("safety: preprocessor config key %q: %s", key, fmt.Sprintf(format, args...))
	}
	const maxSide = 4096
	if c.DoResize {
		if c.Size.ShortestEdge < 1 || c.Size.ShortestEdge > maxSide {
			return bad("size", "shortest_edge %d; want 1…%d", c.Size.ShortestEdge, maxSide)
		}
		if c.Resample != 3 {
			return bad("resample", "%d; only 3 (PIL's bicubic, CLIP's) is supported", c.Resample)
		}
	}
	if c.DoCenterCrop && (c.CropSize.Height < 1 || c.CropSize.Width < 1 || c.CropSize.Height > maxSide || c.CropSize.Width > maxSide) {
		return bad("crop_size", "%d×%d; want sides 1…%d", c.CropSize.Height, c.CropSize.Width, maxSide)
	}
	if c.DoRescale && (math.IsNaN(c.RescaleFactor) || math.IsInf(c.RescaleFactor, 0)) {
		return bad("rescale_factor", "%v", c.RescaleFactor)
	}
	if c.DoNormalize {
		if len(c.ImageMean) != 3 {
			return bad("image_mean", "%d values; want 3 (RGB)", len(c.ImageMean))
		}
		if len(c.ImageStd) != 3 {
			return bad("image_std", "%d values; want 3 (RGB)", len(c.ImageStd))
		}
		for _, s := range c.ImageStd {
			if !(s != 0) || math.IsInf(s, 0) {
				return bad("image_std", "%v; want finite non-zero values", c.ImageStd)
			}
		}
	}
	return nil
}

// rgb returns img's pixels as 8-bit RGB, row-major, as PIL's convert("RGB") gives them: the
// colour of non-premultiplied RGBA with the alpha dropped.
func rgb(img image.Image) (pix []uint8, w, h int) {
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	pix = make([]uint8, 0, w*h*3)
	if n, ok := img.(*image.NRGBA); ok {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := n.Pix[n.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				pix = append(pix, row[4*x], row[4*x+1], row[4*x+2])
			}
		}
		return pix, w, h
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			pix = append(pix, c.R, c.G, c.B)
		}
	}
	return pix, w, h
}

// shortestEdgeSize is transformers' get_resize_output_image_size with default_to_square=False:
// the short side becomes size, the long one int(size·long/short).
func shortestEdgeSize(h, w, size int) (oh, ow int) {
	short, long := w, h
	if w > h {
		short, long = h, w
	}
	newLong := int(float64(size) * float64(long) / float64(short))
	if w <= h {
		return newLong, size
	}
	return size, newLong
}

// floorDiv2 is Python's n // 2.
func floorDiv2(n int) int {
	if n < 0 {
		return -((-n + 1) / 2)
	}
	return n / 2
}

// centerCrop is transformers' center_crop on an h×w RGB image: the centred ch×cw window, the
// image zero-padded (centred) first where it is smaller.
func centerCrop(pix []uint8, h, w, ch, cw int) []uint8 {
	top, left := floorDiv2(h-ch), floorDiv2(w-cw)
	out := make([]uint8, ch*cw*3)
	for y := 0; y < ch; y++ {
		sy := top + y
		if sy < 0 || sy >= h {
			continue
		}
		for x := 0; x < cw; x++ {
			sx := left + x
			if sx < 0 || sx >= w {
				continue
			}
			copy(out[(y*cw+x)*3:(y*cw+x)*3+3], pix[(sy*w+sx)*3:])
		}
	}
	return out
}

// Preprocess is CLIPImageProcessor's preprocess for one image: RGB, resize so the shortest
// edge is size.shortest_edge (PIL bicubic on the 8-bit image), centre crop to crop_size,
// rescale, normalise. It returns the pixel values as 3×H×W float32 (channels first) and H, W.
func (c ProcessorConfig) Preprocess(img image.Image) (pixels []float32, h, w int, err error) {
	if img == nil {
		return nil, 0, 0, fmt.Errorf("safety: Preprocess: nil image")
	}
	pix, w, h := rgb(img)
	if w < 1 || h < 1 || w > 1<<15 || h > 1<<15 {
		return nil, 0, 0, fmt.Errorf("safety: Preprocess: image of %d×%d pixels; want sides 1…%d", w, h, 1<<15)
	}
	if c.DoResize {
		oh, ow := shortestEdgeSize(h, w, c.Size.ShortestEdge)
		if ow < 1 || oh < 1 || ow > 1<<16 || oh > 1<<16 {
			return nil, 0, 0, fmt.Errorf("safety: Preprocess: a %d×%d image resizes to %d×%d", w, h, ow, oh)
		}
		// PIL's bicubic to the bit (internal/pilresize transcribes Pillow's Resample.c):
		// x/image/draw's CatmullRom is the same a = −0.5 kernel, but it resamples 16-bit
		// premultiplied colour with float64 weights and rounds once, while Pillow quantises the
		// weights to 22 fraction bits and rounds to 8 bits after each pass, and the scores
		// depend on these bytes.
		out, err := pilresize.Resize(pix, w, h, 3, ow, oh, pilresize.Bicubic)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("safety: Preprocess: %w", err)
		}
		pix, w, h = out, ow, oh
	}
	if c.DoCenterCrop {
		pix, h, w = centerCrop(pix, h, w, c.CropSize.Height, c.CropSize.Width), c.CropSize.Height, c.CropSize.Width
	}
	var mean, std [3]float32
	for i := range 3 {
		mean[i], std[i] = 0, 1
		if c.DoNormalize {
			mean[i], std[i] = float32(c.ImageMean[i]), float32(c.ImageStd[i])
		}
	}
	out := make([]float32, 3*h*w)
	for i := 0; i < h*w; i++ {
		for ch := range 3 {
			v := float32(pix[i*3+ch])
			if c.DoRescale { // numpy: uint8 array × Python float in float64, then astype(float32)
				v = float32(float64(pix[i*3+ch]) * c.RescaleFactor)
			}
			if c.DoNormalize { // (image − mean) / std in float32
				v = float32(v-mean[ch]) / std[ch]
			}
			out[ch*h*w+i] = v
		}
	}
	return out, h, w, nil
}
