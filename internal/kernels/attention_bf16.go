package kernels

import "unsafe"

// bfloat16 attention. AttentionBF16 runs Attention's tiles in the column layout
// (attention_col.go: the same tasks, query tiles of attnBQ lanes, key tiles of attnKBC, online
// softmax in float32) with both matrix products on bf16 pairs and VDPBF16PS:
//
//   - S^T = K·Q̃^T: the scaled query tile is rounded to bf16 pairs of consecutive head-dim values
//     (one 32-bit slot per query lane and pair), the keys are packed once per head into 8-key
//     panels of the same pairs, broadcast.
//   - the online softmax in float32 on S^T, whose probabilities are rounded to bf16 pairs of
//     consecutive keys per query lane.
//   - O^T += V·P^T: the values are packed once per head as rows of key pairs per column,
//     broadcast.
//
// The products of bf16 values are exact in float32 and accumulate in float32, so the error is
// that of rounding Q̃, K, V and P to bf16 (8 significant bits).

// AttentionBF16 is Attention with Q·Kᵀ and P·V multiplied in bfloat16 on AMX tiles (AMX) or
// with VDPBF16PS on CPUs with AVX512-BF16 that pays (BF16Status): q (scaled by Scale), k, v and
// the softmax probabilities are rounded to bf16, products accumulate in float32, and the softmax
// (maximum, exponentials, sums) stays float32. Elsewhere it is Attention on the unrounded inputs: rounding them first
// would cost a pass over q, k and v and make the float32 result no cheaper.
func AttentionBF16(p AttentionParams, q, k, v, out []float32) {
	if useBF16 && amxOn() { // the products on AMX tiles (attention_amx.go)
		attention(p, q, k, v, out, true, amxKernelAsm)
		return
	}
	attention(p, q, k, v, out, bf16Kernels(), nil)
}

// attnBF16Asm reports whether the bf16 attention runs its assembly kernels (else the plain-Go
// twins, which round and accumulate the same way).
func attnBF16Asm() bool { return useBF16 && useAVX2 && useAVX512 && !bf16Twin }

// attnPairs is the number of bf16 pairs a head's row of d values takes.
func attnPairs(d int) int { return (d + 1) / 2 }

// attnGrowU32 returns b with length n, reallocated when its capacity is short.
func attnGrowU32(b []uint32, n int) []uint32 {
	if cap(b) < n {
		return make([]uint32, n)
	}
	return b[:n]
}

// u32to16 views 32-bit slots as twice as many 16-bit values.
func u32to16(u []uint32) []uint16 {
	if len(u) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&u[0])), 2*len(u))
}
