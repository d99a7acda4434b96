#include "textflag.h"

// func f16ToF32F16C(dst *float32, src *uint16, n int)
// Widens n (a multiple of 8) half-precision values with VCVTPH2PS (F16C), 32 per iteration
// while there are, then 8. Both widening loops prefetch 2 KiB ahead: callers widen weights a few
// hundred values at a time as they stream from memory (the Winograd filter transform of half
// and bf16 weights), and the next call's values follow on.
TEXT ·f16ToF32F16C(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   hdone
	CMPQ CX, $4
	JLT  hloop

hloop4:
	PREFETCHT0 2048(SI)
	VCVTPH2PS  (SI), Y0
	VCVTPH2PS  16(SI), Y1
	VCVTPH2PS  32(SI), Y2
	VCVTPH2PS  48(SI), Y3
	VMOVUPS    Y0, (DI)
	VMOVUPS    Y1, 32(DI)
	VMOVUPS    Y2, 64(DI)
	VMOVUPS    Y3, 96(DI)
	ADDQ       $64, SI
	ADDQ       $128, DI
	SUBQ       $4, CX
	CMPQ       CX, $4
	JGE        hloop4
	TESTQ      CX, CX
	JZ         hdone

hloop:
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       hloop

hdone:
	VZEROUPPER
	RET

// func f16BF16ToF32AVX2(dst *float32, src *uint16, n int)
// Widens n (a multiple of 8) bfloat16 values: zero-extend to 32 bits, shift into the top half.
// 32 values per iteration while there are (the loop's own instructions cost as much as the
// conversion at 8), then 8.
TEXT ·f16BF16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   bdone
	CMPQ CX, $4
	JLT  bloop

bloop4:
	PREFETCHT0 2048(SI)
	VPMOVZXWD (SI), Y0
	VPMOVZXWD 16(SI), Y1
	VPMOVZXWD 32(SI), Y2
	VPMOVZXWD 48(SI), Y3
	VPSLLD    $16, Y0, Y0
	VPSLLD    $16, Y1, Y1
	VPSLLD    $16, Y2, Y2
	VPSLLD    $16, Y3, Y3
	VMOVDQU   Y0, (DI)
	VMOVDQU   Y1, 32(DI)
	VMOVDQU   Y2, 64(DI)
	VMOVDQU   Y3, 96(DI)
	ADDQ      $64, SI
	ADDQ      $128, DI
	SUBQ      $4, CX
	CMPQ      CX, $4
	JGE       bloop4
	TESTQ     CX, CX
	JZ        bdone

bloop:
	VPMOVZXWD (SI), Y0
	VPSLLD    $16, Y0, Y0
	VMOVDQU   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       bloop

bdone:
	VZEROUPPER
	RET
