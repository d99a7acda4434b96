package nn

import "github.com/smallsd/smallsd/internal/kernels"

// useWinograd reports whether a convolution runs as Winograd F(4×4, 3×3)
// (kernels.Conv2DWinogradW) rather than as the direct implicit GEMM (kernels.Conv2D): 3×3
// stride-1 convolutions with at least 64 channels in and out, at least 256 4×4 output tiles,
// and at most 512·512 filters (the transformed filters, 36·K·C floats, are made on every call in a
// pooled buffer: at most 38 MB, the VAE's largest).
//
// The filter transform costs in proportion to K·C and saves multiplications in proportion to
// K·C·tiles. Measured with kernels' BenchmarkConvChoice (GFLOP per CPU-second, AMD EPYC Zen 5,
// AVX-512): at 256–16384 tiles (the VAE decoder's) Winograd ran at 2.2–3.7× the direct
// convolution, at 128 tiles (640→640 on 2×32×32) 1.5×, at 32 tiles (1280→1280 on 2×16×16)
// 0.7×. Taking the UNet's 32×32 layers too (up to 1280×1280 filters, 236 MB transformed) left
// the UNet forward no faster and raised its peak RSS by 0.6 GB, so they stay direct.
func useWinograd(p kernels.ConvParams) bool {
	if !kernels.WinogradApplies(p) {
		return false
	}
	oh, ow := p.OutSize()
	tiles := p.N * ((oh + 3) / 4) * ((ow + 3) / 4)
	return p.C >= 64 && p.K >= 64 && tiles >= 256 && p.C*p.K <= 512*512
}
