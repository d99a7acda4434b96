package nn

import "github.com/smallsd/smallsd/internal/kernels"

// useWinograd reports whether a convolution runs as Winograd F(4×4, 3×3)
// (kernels.Conv2DWinogradW) rather than as the direct implicit GEMM (kernels.Conv2D): 3×3
// stride-1 convolutions with at least 64 channels in and out and at least
// kernels.WinogradMinTiles() 4×4 output tiles (16 with AVX-512, 8 with AVX2 only).
//
// The filters are transformed on every call: keeping them would cost 4× the weights' memory
// (about 0.9 GB more for the UNet's 32×32 and 64×64 layers alone). With few tiles (the UNet's
// 32×32 and smaller layers) each GEMM worker transforms its own block of filters just before
// multiplying it, so the transform never goes through memory; the transform costs in proportion
// to K·C, the multiplications saved grow with K·C·tiles. Measured with kernels'
// BenchmarkConvChoice and WinogradMinTiles' figures (AMD EPYC Zen 5, 2 cores): Winograd takes
// 0.48× the direct convolution's time on the UNet's 16×16 layers at batch 2, 0.3–0.6× on its
// 32×32 and 64×64 layers, 0.87× at 16 tiles; at 8 tiles it loses with AVX-512 (1.45×) and wins
// with AVX2 only (0.67×).
func useWinograd(p kernels.ConvParams) bool {
	if !kernels.WinogradApplies(p) {
		return false
	}
	oh, ow := p.OutSize()
	tiles := p.N * ((oh + 3) / 4) * ((ow + 3) / 4)
	return p.C >= 64 && p.K >= 64 && tiles >= kernels.WinogradMinTiles()
}
