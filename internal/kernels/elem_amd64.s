#include "textflag.h"

// func elemAddAVX2(dst, a, b *float32, n int)
// dst[i] = a[i] + b[i]; n is a multiple of 8.
TEXT ·elemAddAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   adddone
	TESTQ $1, CX
	JZ   add16
	VMOVUPS (SI), Y0
	VADDPS  (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	SHRQ    $1, CX
	JZ      adddone
	JMP     addloop

add16:
	SHRQ $1, CX

addloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VADDPS  (DX), Y0, Y0
	VADDPS  32(DX), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	DECQ    CX
	JNZ     addloop

adddone:
	VZEROUPPER
	RET

// func elemScaleAVX2(dst, src *float32, n int, s float32)
// dst[i] = src[i]·s; n is a multiple of 8.
TEXT ·elemScaleAVX2(SB), NOSPLIT, $0-28
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS s+24(FP), Y2
	SHRQ         $3, CX
	JZ           scdone

scloop:
	VMULPS  (SI), Y2, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     scloop

scdone:
	VZEROUPPER
	RET

// func elemAddScalarAVX2(dst, src *float32, n int, b float32)
// dst[i] = src[i] + b; n is a multiple of 8.
TEXT ·elemAddScalarAVX2(SB), NOSPLIT, $0-28
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS b+24(FP), Y2
	SHRQ         $3, CX
	JZ           asdone

asloop:
	VADDPS  (SI), Y2, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     asloop

asdone:
	VZEROUPPER
	RET

// func elemAddRepeatAVX2(dst, a, b *float32, n, m int)
// dst[i] = a[i] + b[i mod m] for i < n (n a multiple of m, m a multiple of 8).
TEXT ·elemAddRepeatAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), R8
	MOVQ m+32(FP), R9
	SHRQ $3, R9
	XORQ AX, AX

arouter:
	MOVQ DX, BX
	MOVQ R9, CX

arinner:
	VMOVUPS (SI), Y0
	VADDPS  (BX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, BX
	ADDQ    $32, DI
	DECQ    CX
	JNZ     arinner
	ADDQ    m+32(FP), AX
	CMPQ    AX, R8
	JLT     arouter
	VZEROUPPER
	RET

// func elemDup2AVX2(d, s *float32, n int)
// d[2i] = d[2i+1] = s[i]; n is a multiple of 8.
TEXT ·elemDup2AVX2(SB), NOSPLIT, $0-24
	MOVQ d+0(FP), DI
	MOVQ s+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   dupdone

duploop:
	VMOVUPS    (SI), Y0           // s0 … s7
	VUNPCKLPS  Y0, Y0, Y1         // s0 s0 s1 s1 | s4 s4 s5 s5
	VUNPCKHPS  Y0, Y0, Y2         // s2 s2 s3 s3 | s6 s6 s7 s7
	VPERM2F128 $0x20, Y2, Y1, Y3  // s0 s0 s1 s1 s2 s2 s3 s3
	VPERM2F128 $0x31, Y2, Y1, Y4  // s4 s4 s5 s5 s6 s6 s7 s7
	VMOVUPS    Y3, (DI)
	VMOVUPS    Y4, 32(DI)
	ADDQ       $32, SI
	ADDQ       $64, DI
	DECQ       CX
	JNZ        duploop

dupdone:
	VZEROUPPER
	RET

// func elemTranspose8AVX2(dst, src *float32, rows, cols, lds, ldd int)
// Transposes a rows×cols block (both multiples of 8) of src (row stride lds floats) into dst
// (row stride ldd floats): dst[c·ldd + r] = src[r·lds + c], by 8×8 register transposes.
TEXT ·elemTranspose8AVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ rows+16(FP), R8
	MOVQ cols+24(FP), R9
	MOVQ lds+32(FP), R10
	MOVQ ldd+40(FP), R11
	SHLQ $2, R10
	SHLQ $2, R11
	LEAQ (R10)(R10*2), R12     // 3 src rows
	LEAQ (R11)(R11*2), R13     // 3 dst rows
	SHRQ $3, R8
	SHRQ $3, R9

trrows:
	MOVQ SI, AX                // src block
	MOVQ DI, BX                // dst block
	MOVQ R9, CX

trcols:
	LEAQ    (AX)(R10*4), DX
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R10*1), Y1
	VMOVUPS (AX)(R10*2), Y2
	VMOVUPS (AX)(R12*1), Y3
	VMOVUPS (DX), Y4
	VMOVUPS (DX)(R10*1), Y5
	VMOVUPS (DX)(R10*2), Y6
	VMOVUPS (DX)(R12*1), Y7

	VUNPCKLPS Y1, Y0, Y8       // a0 b0 a1 b1 | a4 b4 a5 b5
	VUNPCKHPS Y1, Y0, Y9       // a2 b2 a3 b3 | a6 b6 a7 b7
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15

	VSHUFPS $0x44, Y10, Y8, Y0   // a0 b0 c0 d0 | a4 b4 c4 d4
	VSHUFPS $0xee, Y10, Y8, Y1   // a1 b1 c1 d1 | a5 …
	VSHUFPS $0x44, Y11, Y9, Y2   // a2 …
	VSHUFPS $0xee, Y11, Y9, Y3   // a3 …
	VSHUFPS $0x44, Y14, Y12, Y4  // e0 f0 g0 h0 | e4 …
	VSHUFPS $0xee, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xee, Y15, Y13, Y7

	VPERM2F128 $0x20, Y4, Y0, Y8   // column 0
	VPERM2F128 $0x20, Y5, Y1, Y9   // column 1
	VPERM2F128 $0x20, Y6, Y2, Y10  // column 2
	VPERM2F128 $0x20, Y7, Y3, Y11  // column 3
	VPERM2F128 $0x31, Y4, Y0, Y12  // column 4
	VPERM2F128 $0x31, Y5, Y1, Y13  // column 5
	VPERM2F128 $0x31, Y6, Y2, Y14  // column 6
	VPERM2F128 $0x31, Y7, Y3, Y15  // column 7

	LEAQ    (BX)(R11*4), DX
	VMOVUPS Y8, (BX)
	VMOVUPS Y9, (BX)(R11*1)
	VMOVUPS Y10, (BX)(R11*2)
	VMOVUPS Y11, (BX)(R13*1)
	VMOVUPS Y12, (DX)
	VMOVUPS Y13, (DX)(R11*1)
	VMOVUPS Y14, (DX)(R11*2)
	VMOVUPS Y15, (DX)(R13*1)

	ADDQ $32, AX
	LEAQ (BX)(R11*8), BX
	DECQ CX
	JNZ  trcols

	LEAQ (SI)(R10*8), SI
	ADDQ $32, DI
	DECQ R8
	JNZ  trrows
	VZEROUPPER
	RET
