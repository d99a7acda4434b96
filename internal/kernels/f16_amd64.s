#include "textflag.h"

// func f16ToF32F16C(dst *float32, src *uint16, n int)
// Widens n (a multiple of 8) half-precision values with VCVTPH2PS (F16C).
TEXT ·f16ToF32F16C(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   hdone

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
TEXT ·f16BF16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   bdone

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
