package torchrand_test

import (
	"fmt"

	"github.com/smallsd/smallsd/torchrand"
)

// The initial latents of a 512×512 Stable Diffusion image for seed 42, as
// torch.randn((1, 4, 64, 64), generator=torch.Generator().manual_seed(42)).
func ExampleGenerator_Randn() {
	g := torchrand.New(42)
	latents := g.Randn(1, 4, 64, 64)
	fmt.Println(len(latents))
	// Output: 16384
}
