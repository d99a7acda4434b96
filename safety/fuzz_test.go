package safety

import (
	"encoding/json"
	"image"
	"os"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// FuzzProcessorConfig: any preprocessor_config.json either fails to parse or validate with an
// error, or preprocesses an odd-sized image to 3×crop_size values, without panicking.
func FuzzProcessorConfig(f *testing.F) {
	for _, p := range []string{golden.Path("configs", "feature_extractor", "preprocessor_config.json"),
		golden.Path("tiny-sd-safety", "feature_extractor", "preprocessor_config.json")} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"size": 7, "crop_size": 9}`))
	f.Add([]byte(`{"size": {"shortest_edge": 3}, "do_center_crop": false, "do_normalize": false}`))
	f.Add([]byte(`{"image_std": [0, 1, 1]}`))
	img := image.NewNRGBA(image.Rect(0, 0, 13, 5))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 37)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c ProcessorConfig
		if json.Unmarshal(data, &c) != nil || c.Validate() != nil {
			return
		}
		if c.DoResize && c.Size.ShortestEdge > 512 || c.DoCenterCrop && c.CropSize.Height*c.CropSize.Width > 1<<18 {
			return // valid, but too large to be quick
		}
		pix, h, w, err := c.Preprocess(img)
		if err != nil {
			return
		}
		if len(pix) != 3*h*w || c.DoCenterCrop && (h != c.CropSize.Height || w != c.CropSize.Width) {
			t.Fatalf("%d values for %d×%d", len(pix), h, w)
		}
	})
}
