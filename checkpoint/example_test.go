package checkpoint_test

import (
	"fmt"

	"github.com/smallsd/smallsd/checkpoint"
	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/unet"
)

func Example() {
	f, err := checkpoint.Open(golden.Path("single-file", "tiny-sd.ldm.safetensors"))
	if err != nil {
		panic(err)
	}
	defer f.Close()
	cfg, err := f.UNetConfig()
	if err != nil {
		panic(err)
	}
	cfg.NormNumGroups = 8 // tiny-sd's; the tensors cannot show it
	u, err := unet.New(cfg, f.UNet())
	if err != nil {
		panic(err)
	}
	fmt.Println(f.LayersPerBlock(), u.Config().BlockOutChannels, f.CheckUnused("unet"))
	// Output: 1 [32 32 64 64] <nil>
}
