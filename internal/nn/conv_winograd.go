package nn

import "github.com/smallsd/smallsd/internal/kernels"

// useWinograd reports whether a convolution runs as Winograd F(4×4, 3×3)
// (kernels.Conv2DWinogradW) rather than as the direct implicit GEMM (kernels.Conv2D): 3×3
// stride-1 convolutions with at least 64 channels in and out and at least 128 4×4 output tiles.
// The filter transform on every call costs in proportion to K·C and the multiplications saved in
// proportion to K·C·tiles, so the tile count decides. Measured with
// kernels' BenchmarkConvChoice (GFLOP per CPU-second, AMD EPYC Zen 5, AVX-512): at 128 tiles
// (640→640 on 2×32×32) Winograd ran at 1.5× the direct convolution, at 256–16384 tiles (the
// VAE decoder's) 2.2–3.7×; at 32 tiles (1280→1280 on 2×16×16) at 0.7×.
func useWinograd(p kernels.ConvParams) bool {
	if !kernels.WinogradApplies(p) {
		return false
	}
	oh, ow := p.OutSize()
	tiles := p.N * ((oh + 3) / 4) * ((ow + 3) / 4)
	return p.C >= 64 && p.K >= 64 && tiles >= 128
}
