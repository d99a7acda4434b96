// Package kernels holds the hot loops of smallsd: SGEMM, convolution, fused attention, norms and
// activations on float32 slices with explicit shapes. Each fast path (Go assembly for amd64 with
// AVX2+FMA) has a plain-Go twin that runs on every architecture and serves as the test oracle.
//
// LinearBF16 and Conv2DBF16 take bfloat16 weights: with AVX512-BF16 they multiply bf16 pairs
// (VDPBF16PS, emitted as bytes by asmgen and checked with objdump in the tests) into float32
// sums, elsewhere they widen the weights into the float32 kernels (bf16.go). With AMX,
// both run a tile kernel (TDPBF16PS) after a self-test at first use (amx.go, AMXStatus).
//
// Kernels never allocate in their hot path; temporary buffers come from pools inside the package.
// Work is split across the machine's cores with parallelFor.
package kernels
