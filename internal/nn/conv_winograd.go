package nn

import "github.com/smallsd/smallsd/internal/kernels"

// useWinograd reports whether a convolution runs as Winograd F(4×4, 3×3)
// (kernels.Conv2DWinogradW) rather than as the direct implicit GEMM (kernels.Conv2D): 3×3
// stride-1 convolutions with at least 64 channels in and out and at least
// kernels.WinogradMinTiles() 4×4 output tiles (32).
//
// The filters are transformed on every call (in blocks of input and output channels when the
// transform exceeds 40 MB): keeping them would cost 4× the weights' memory (about 0.9 GB more for
// the UNet's 32×32 and 64×64 layers alone), while the transform costs in proportion to K·C and
// the multiplications saved grow with K·C·tiles. Measured with kernels' BenchmarkConvChoice (GFLOP
// per CPU-second counting the direct convolution's FLOPs, AMD EPYC Zen 5, AVX-512, 2 cores): the
// UNet's 64×64 layers (512 tiles at batch 2) 326–340 against 133–150 direct, its 32×32 layers
// (128 tiles) 311–325 against 98–146, its 16×16 layers (32 tiles) 10–35% faster than direct
// (see kernels.WinogradMinTiles), 8×8 53 against 142; the VAE's 306–355 against 98–132.
// Filters transformed beforehand (Conv2DWinograd) would run the 16×16 layers about twice as fast
// as direct, which is what the per-call transform costs.
func useWinograd(p kernels.ConvParams) bool {
	if !kernels.WinogradApplies(p) {
		return false
	}
	oh, ow := p.OutSize()
	tiles := p.N * ((oh + 3) / 4) * ((ow + 3) / 4)
	return p.C >= 64 && p.K >= 64 && tiles >= kernels.WinogradMinTiles()
}
