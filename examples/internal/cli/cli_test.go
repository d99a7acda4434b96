package cli

import (
	"testing"
	"time"

	"github.com/smallsd/smallsd/hub"
	"github.com/smallsd/smallsd/pipeline"
)

func TestProgressText(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{bytesText(999), "999 B"},
		{bytesText(1234567), "1.23 MB"},
		{bytesText(1_160_000_000), "1.16 GB"},
		{duration(45 * time.Second), "45s"},
		{duration(185 * time.Second), "3m05s"},
		{duration(3720 * time.Second), "1h02m"},
		{rate(10, 5*time.Second), "2.00 it/s"},
		{rate(2, 15*time.Second), "7.50 s/it"},
		{bar(5, 10, 10), "[#####.....]"},
		{Numbered("out/img.png", 3), "out/img-3.png"},
		{stepText(pipeline.Progress{Step: 5, Total: 26, Timestep: 541, Elapsed: 40 * time.Second}),
			"step 5/26 (t=541): 8.00 s/it, 2m48s left"},
		{downloadText(hub.Progress{File: "unet/diffusion_pytorch_model.bin", Index: 3, Count: 8,
			Done: 120_000_000, Total: 1_160_000_000, AllDone: 500_000_000, AllTotal: 2_000_000_000,
			Rate: 12_300_000, Remaining: 85 * time.Second}),
			"[3/8] unet/diffusion_pytorch_model.bin 120 MB/1.16 GB, 12.3 MB/s, 1m25s left (all 25%)"},
		{downloadText(hub.Progress{File: "model_index.json", Index: 1, Count: 1, Done: 541, Total: 541}),
			"[1/1] model_index.json 541 B/541 B, done"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
