//go:build amd64

#include "textflag.h"

// AVX2/FMA Winograd F(4×4, 3×3) transforms, 8 tiles per iteration (one tile per ymm lane); see
// winograd.go for the matrices and winoInputGo/winoOutputGo, the plain-Go twins. Within a group
// of 8 tiles the lanes hold tiles 0, 2, 4, 6, 1, 3, 5, 7 (what an in-lane 4×4 transpose gives):
// the input transform writes V in that order and the output transform reads M in it, so the
// GEMMs between them, column-order blind, need no shuffles across 128-bit lanes.

DATA winoTwo<>+0(SB)/4, $0x40000000
DATA winoTwo<>+4(SB)/4, $0x40000000
DATA winoTwo<>+8(SB)/4, $0x40000000
DATA winoTwo<>+12(SB)/4, $0x40000000
DATA winoTwo<>+16(SB)/4, $0x40000000
DATA winoTwo<>+20(SB)/4, $0x40000000
DATA winoTwo<>+24(SB)/4, $0x40000000
DATA winoTwo<>+28(SB)/4, $0x40000000
GLOBL winoTwo<>(SB), RODATA|NOPTR, $32

DATA winoFour<>+0(SB)/4, $0x40800000
DATA winoFour<>+4(SB)/4, $0x40800000
DATA winoFour<>+8(SB)/4, $0x40800000
DATA winoFour<>+12(SB)/4, $0x40800000
DATA winoFour<>+16(SB)/4, $0x40800000
DATA winoFour<>+20(SB)/4, $0x40800000
DATA winoFour<>+24(SB)/4, $0x40800000
DATA winoFour<>+28(SB)/4, $0x40800000
GLOBL winoFour<>(SB), RODATA|NOPTR, $32

DATA winoFive<>+0(SB)/4, $0x40a00000
DATA winoFive<>+4(SB)/4, $0x40a00000
DATA winoFive<>+8(SB)/4, $0x40a00000
DATA winoFive<>+12(SB)/4, $0x40a00000
DATA winoFive<>+16(SB)/4, $0x40a00000
DATA winoFive<>+20(SB)/4, $0x40a00000
DATA winoFive<>+24(SB)/4, $0x40a00000
DATA winoFive<>+28(SB)/4, $0x40a00000
GLOBL winoFive<>(SB), RODATA|NOPTR, $32

DATA winoEight<>+0(SB)/4, $0x41000000
DATA winoEight<>+4(SB)/4, $0x41000000
DATA winoEight<>+8(SB)/4, $0x41000000
DATA winoEight<>+12(SB)/4, $0x41000000
DATA winoEight<>+16(SB)/4, $0x41000000
DATA winoEight<>+20(SB)/4, $0x41000000
DATA winoEight<>+24(SB)/4, $0x41000000
DATA winoEight<>+28(SB)/4, $0x41000000
GLOBL winoEight<>(SB), RODATA|NOPTR, $32

// IN1D8(o0, o1, o2, o3, o4, o5): the six memory operands get Bᵀ·(Y0…Y5); clobbers Y6–Y10.
#define IN1D8(o0, o1, o2, o3, o4, o5) \
	VMOVAPS Y4, Y6; VFNMADD231PS winoFour<>(SB), Y2, Y6 \
	VMOVAPS Y3, Y7; VFNMADD231PS winoFour<>(SB), Y1, Y7 \
	VSUBPS Y2, Y4, Y8 \
	VSUBPS Y1, Y3, Y9; VADDPS Y9, Y9, Y9 \
	VMOVAPS Y4, Y10; VFNMADD231PS winoFive<>(SB), Y2, Y10; VFMADD231PS winoFour<>(SB), Y0, Y10; VMOVUPS Y10, o0 \
	VADDPS Y7, Y6, Y10; VMOVUPS Y10, o1 \
	VSUBPS Y7, Y6, Y10; VMOVUPS Y10, o2 \
	VADDPS Y9, Y8, Y10; VMOVUPS Y10, o3 \
	VSUBPS Y9, Y8, Y10; VMOVUPS Y10, o4 \
	VMOVAPS Y5, Y10; VFNMADD231PS winoFive<>(SB), Y3, Y10; VFMADD231PS winoFour<>(SB), Y1, Y10; VMOVUPS Y10, o5

// ROW8(k): row k of the 8 patches at AX: phases 0–5 in Y0–Y5 by in-lane transposes of the 32
// floats at 0(AX) and at 16(AX), their row transform to scratch row k (DX).
#define ROW8(k) \
	VMOVUPS 0(AX), Y12; VMOVUPS 32(AX), Y13; VMOVUPS 64(AX), Y14; VMOVUPS 96(AX), Y15 \
	VUNPCKLPS Y13, Y12, Y6; VUNPCKHPS Y13, Y12, Y7; VUNPCKLPS Y15, Y14, Y8; VUNPCKHPS Y15, Y14, Y9 \
	VUNPCKLPD Y8, Y6, Y0; VUNPCKHPD Y8, Y6, Y1; VUNPCKLPD Y9, Y7, Y2; VUNPCKHPD Y9, Y7, Y3 \
	VMOVUPS 16(AX), Y12; VMOVUPS 48(AX), Y13; VMOVUPS 80(AX), Y14; VMOVUPS 112(AX), Y15 \
	VUNPCKLPS Y13, Y12, Y6; VUNPCKLPS Y15, Y14, Y8 \
	VUNPCKLPD Y8, Y6, Y4; VUNPCKHPD Y8, Y6, Y5 \
	IN1D8((k*192+0)(DX), (k*192+32)(DX), (k*192+64)(DX), (k*192+96)(DX), (k*192+128)(DX), (k*192+160)(DX)) \
	ADDQ R9, AX

// COL8(j): column j from scratch, its transform to dst rows ξ = 6i + j at R10 + i·R11.
#define COL8(j) \
	VMOVUPS (0*192+j*32)(DX), Y0; VMOVUPS (1*192+j*32)(DX), Y1; VMOVUPS (2*192+j*32)(DX), Y2 \
	VMOVUPS (3*192+j*32)(DX), Y3; VMOVUPS (4*192+j*32)(DX), Y4; VMOVUPS (5*192+j*32)(DX), Y5 \
	LEAQ (R10)(R11*2), R13; ADDQ R11, R13 \
	IN1D8((R10), (R10)(R11*1), (R10)(R11*2), (R13), (R13)(R11*1), (R13)(R11*2)) \
	ADDQ R8, R10

// func winoInput8x(dst *float32, ld int, strip *float32, ldr int, n8 int, scratch *float32)
TEXT ·winoInput8x(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ ld+8(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R11
	ADDQ R11, R11 // 6·ld bytes
	MOVQ strip+16(FP), SI
	MOVQ ldr+24(FP), R9
	SHLQ $2, R9
	MOVQ n8+32(FP), CX
	MOVQ scratch+40(FP), DX

in8Loop:
	TESTQ CX, CX
	JZ    in8Done
	MOVQ  SI, AX
	ROW8(0)
	ROW8(1)
	ROW8(2)
	ROW8(3)
	ROW8(4)
	ROW8(5)
	MOVQ DI, R10
	COL8(0)
	COL8(1)
	COL8(2)
	COL8(3)
	COL8(4)
	COL8(5)
	ADDQ $128, SI
	ADDQ $32, DI
	DECQ CX
	JMP  in8Loop

in8Done:
	VZEROUPPER
	RET

// OUT1D8: Y6…Y9 = Aᵀ·(Y0…Y5); clobbers Y10–Y13.
#define OUT1D8 \
	VADDPS Y2, Y1, Y10 \
	VSUBPS Y2, Y1, Y11 \
	VADDPS Y4, Y3, Y12 \
	VSUBPS Y4, Y3, Y13 \
	VADDPS Y10, Y0, Y6; VADDPS Y12, Y6, Y6 \
	VMOVAPS Y11, Y7; VFMADD231PS winoTwo<>(SB), Y13, Y7 \
	VMOVAPS Y10, Y8; VFMADD231PS winoFour<>(SB), Y12, Y8 \
	VADDPS Y5, Y11, Y9; VFMADD231PS winoEight<>(SB), Y13, Y9

// OROW8(i): row i of the tiles' 6×6 values (m rows ξ = 6i…6i+5 at R10 + j·R8), its row
// transform to scratch.
#define OROW8(i) \
	LEAQ (R10)(R8*2), R13; ADDQ R8, R13 \
	VMOVUPS (R10), Y0; VMOVUPS (R10)(R8*1), Y1; VMOVUPS (R10)(R8*2), Y2 \
	VMOVUPS (R13), Y3; VMOVUPS (R13)(R8*1), Y4; VMOVUPS (R13)(R8*2), Y5 \
	OUT1D8 \
	VMOVUPS Y6, (i*128+0)(DX); VMOVUPS Y7, (i*128+32)(DX); VMOVUPS Y8, (i*128+64)(DX); VMOVUPS Y9, (i*128+96)(DX) \
	ADDQ R11, R10

// OCOL8(s): column s from scratch, its transform plus bias (Y14) to scratch rows 6…9.
#define OCOL8(s) \
	VMOVUPS (0*128+s*32)(DX), Y0; VMOVUPS (1*128+s*32)(DX), Y1; VMOVUPS (2*128+s*32)(DX), Y2 \
	VMOVUPS (3*128+s*32)(DX), Y3; VMOVUPS (4*128+s*32)(DX), Y4; VMOVUPS (5*128+s*32)(DX), Y5 \
	OUT1D8 \
	VADDPS Y14, Y6, Y6; VADDPS Y14, Y7, Y7; VADDPS Y14, Y8, Y8; VADDPS Y14, Y9, Y9 \
	VMOVUPS Y6, (768+0*128+s*32)(DX); VMOVUPS Y7, (768+1*128+s*32)(DX) \
	VMOVUPS Y8, (768+2*128+s*32)(DX); VMOVUPS Y9, (768+3*128+s*32)(DX)

// OSTORE8(r): output row r of the 8 tiles (32 floats): an in-lane 4×4 transpose of its four
// columns puts tiles 0…7 in memory order.
#define OSTORE8(r) \
	VMOVUPS (768+r*128+0)(DX), Y0; VMOVUPS (768+r*128+32)(DX), Y1 \
	VMOVUPS (768+r*128+64)(DX), Y2; VMOVUPS (768+r*128+96)(DX), Y3 \
	VUNPCKLPS Y1, Y0, Y4; VUNPCKHPS Y1, Y0, Y5; VUNPCKLPS Y3, Y2, Y6; VUNPCKHPS Y3, Y2, Y7 \
	VUNPCKLPD Y6, Y4, Y8; VUNPCKHPD Y6, Y4, Y9; VUNPCKLPD Y7, Y5, Y10; VUNPCKHPD Y7, Y5, Y11 \
	VMOVUPS Y8, (R12); VMOVUPS Y9, 32(R12); VMOVUPS Y10, 64(R12); VMOVUPS Y11, 96(R12) \
	ADDQ R9, R12

// func winoOutput8x(dst *float32, ldo int, m *float32, ld int, n8 int, bias float32, scratch *float32)
TEXT ·winoOutput8x(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ ldo+8(FP), R9
	SHLQ $2, R9
	MOVQ m+16(FP), SI
	MOVQ ld+24(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R11
	ADDQ R11, R11 // 6·ld bytes
	MOVQ n8+32(FP), CX
	VBROADCASTSS bias+40(FP), Y14
	MOVQ scratch+48(FP), DX

out8Loop:
	TESTQ CX, CX
	JZ    out8Done
	MOVQ  SI, R10
	OROW8(0)
	OROW8(1)
	OROW8(2)
	OROW8(3)
	OROW8(4)
	OROW8(5)
	OCOL8(0)
	OCOL8(1)
	OCOL8(2)
	OCOL8(3)
	MOVQ DI, R12
	OSTORE8(0)
	OSTORE8(1)
	OSTORE8(2)
	OSTORE8(3)
	ADDQ $32, SI
	ADDQ $128, DI
	DECQ CX
	JMP  out8Loop

out8Done:
	VZEROUPPER
	RET
