package nn

import "github.com/smallsd/smallsd/internal/kernels"

// useWinograd reports whether a convolution runs as Winograd F(4×4, 3×3)
// (kernels.Conv2DWinogradW) rather than as the direct implicit GEMM (kernels.Conv2D): 3×3
// stride-1 convolutions with enough channels on both sides and enough 4×4 output tiles that the
// transforms and the per-call filter transform are paid back. The thresholds come from
// BenchmarkConvChoice (README, "Kernels").
func useWinograd(p kernels.ConvParams) bool {
	if !kernels.WinogradApplies(p) {
		return false
	}
	oh, ow := p.OutSize()
	tiles := p.N * ((oh + 3) / 4) * ((ow + 3) / 4)
	return p.C >= 32 && p.K >= 32 && tiles >= 256
}
