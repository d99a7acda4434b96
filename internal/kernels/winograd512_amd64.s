//go:build amd64

#include "textflag.h"

// AVX-512 Winograd F(4×4, 3×3) transforms, 16 tiles per iteration (one tile per zmm lane); see
// winograd.go for the matrices and winoInputGo/winoOutputGo, the plain-Go twins.

// Permutation indices: A/B gather phases (0,1)/(2,3) of 8 tiles from 32 floats, C/D join the low
// and high halves of two vectors, E/F interleave two vectors' floats, G/H two vectors' pairs.


DATA winoIdxA<>+0(SB)/4, $0
DATA winoIdxA<>+4(SB)/4, $4
DATA winoIdxA<>+8(SB)/4, $8
DATA winoIdxA<>+12(SB)/4, $12
DATA winoIdxA<>+16(SB)/4, $16
DATA winoIdxA<>+20(SB)/4, $20
DATA winoIdxA<>+24(SB)/4, $24
DATA winoIdxA<>+28(SB)/4, $28
DATA winoIdxA<>+32(SB)/4, $1
DATA winoIdxA<>+36(SB)/4, $5
DATA winoIdxA<>+40(SB)/4, $9
DATA winoIdxA<>+44(SB)/4, $13
DATA winoIdxA<>+48(SB)/4, $17
DATA winoIdxA<>+52(SB)/4, $21
DATA winoIdxA<>+56(SB)/4, $25
DATA winoIdxA<>+60(SB)/4, $29
GLOBL winoIdxA<>(SB), RODATA|NOPTR, $64

DATA winoIdxB<>+0(SB)/4, $2
DATA winoIdxB<>+4(SB)/4, $6
DATA winoIdxB<>+8(SB)/4, $10
DATA winoIdxB<>+12(SB)/4, $14
DATA winoIdxB<>+16(SB)/4, $18
DATA winoIdxB<>+20(SB)/4, $22
DATA winoIdxB<>+24(SB)/4, $26
DATA winoIdxB<>+28(SB)/4, $30
DATA winoIdxB<>+32(SB)/4, $3
DATA winoIdxB<>+36(SB)/4, $7
DATA winoIdxB<>+40(SB)/4, $11
DATA winoIdxB<>+44(SB)/4, $15
DATA winoIdxB<>+48(SB)/4, $19
DATA winoIdxB<>+52(SB)/4, $23
DATA winoIdxB<>+56(SB)/4, $27
DATA winoIdxB<>+60(SB)/4, $31
GLOBL winoIdxB<>(SB), RODATA|NOPTR, $64

DATA winoIdxC<>+0(SB)/4, $0
DATA winoIdxC<>+4(SB)/4, $1
DATA winoIdxC<>+8(SB)/4, $2
DATA winoIdxC<>+12(SB)/4, $3
DATA winoIdxC<>+16(SB)/4, $4
DATA winoIdxC<>+20(SB)/4, $5
DATA winoIdxC<>+24(SB)/4, $6
DATA winoIdxC<>+28(SB)/4, $7
DATA winoIdxC<>+32(SB)/4, $16
DATA winoIdxC<>+36(SB)/4, $17
DATA winoIdxC<>+40(SB)/4, $18
DATA winoIdxC<>+44(SB)/4, $19
DATA winoIdxC<>+48(SB)/4, $20
DATA winoIdxC<>+52(SB)/4, $21
DATA winoIdxC<>+56(SB)/4, $22
DATA winoIdxC<>+60(SB)/4, $23
GLOBL winoIdxC<>(SB), RODATA|NOPTR, $64

DATA winoIdxD<>+0(SB)/4, $8
DATA winoIdxD<>+4(SB)/4, $9
DATA winoIdxD<>+8(SB)/4, $10
DATA winoIdxD<>+12(SB)/4, $11
DATA winoIdxD<>+16(SB)/4, $12
DATA winoIdxD<>+20(SB)/4, $13
DATA winoIdxD<>+24(SB)/4, $14
DATA winoIdxD<>+28(SB)/4, $15
DATA winoIdxD<>+32(SB)/4, $24
DATA winoIdxD<>+36(SB)/4, $25
DATA winoIdxD<>+40(SB)/4, $26
DATA winoIdxD<>+44(SB)/4, $27
DATA winoIdxD<>+48(SB)/4, $28
DATA winoIdxD<>+52(SB)/4, $29
DATA winoIdxD<>+56(SB)/4, $30
DATA winoIdxD<>+60(SB)/4, $31
GLOBL winoIdxD<>(SB), RODATA|NOPTR, $64

DATA winoIdxE<>+0(SB)/4, $0
DATA winoIdxE<>+4(SB)/4, $16
DATA winoIdxE<>+8(SB)/4, $1
DATA winoIdxE<>+12(SB)/4, $17
DATA winoIdxE<>+16(SB)/4, $2
DATA winoIdxE<>+20(SB)/4, $18
DATA winoIdxE<>+24(SB)/4, $3
DATA winoIdxE<>+28(SB)/4, $19
DATA winoIdxE<>+32(SB)/4, $4
DATA winoIdxE<>+36(SB)/4, $20
DATA winoIdxE<>+40(SB)/4, $5
DATA winoIdxE<>+44(SB)/4, $21
DATA winoIdxE<>+48(SB)/4, $6
DATA winoIdxE<>+52(SB)/4, $22
DATA winoIdxE<>+56(SB)/4, $7
DATA winoIdxE<>+60(SB)/4, $23
GLOBL winoIdxE<>(SB), RODATA|NOPTR, $64

DATA winoIdxF<>+0(SB)/4, $8
DATA winoIdxF<>+4(SB)/4, $24
DATA winoIdxF<>+8(SB)/4, $9
DATA winoIdxF<>+12(SB)/4, $25
DATA winoIdxF<>+16(SB)/4, $10
DATA winoIdxF<>+20(SB)/4, $26
DATA winoIdxF<>+24(SB)/4, $11
DATA winoIdxF<>+28(SB)/4, $27
DATA winoIdxF<>+32(SB)/4, $12
DATA winoIdxF<>+36(SB)/4, $28
DATA winoIdxF<>+40(SB)/4, $13
DATA winoIdxF<>+44(SB)/4, $29
DATA winoIdxF<>+48(SB)/4, $14
DATA winoIdxF<>+52(SB)/4, $30
DATA winoIdxF<>+56(SB)/4, $15
DATA winoIdxF<>+60(SB)/4, $31
GLOBL winoIdxF<>(SB), RODATA|NOPTR, $64

DATA winoIdxG<>+0(SB)/8, $0
DATA winoIdxG<>+8(SB)/8, $8
DATA winoIdxG<>+16(SB)/8, $1
DATA winoIdxG<>+24(SB)/8, $9
DATA winoIdxG<>+32(SB)/8, $2
DATA winoIdxG<>+40(SB)/8, $10
DATA winoIdxG<>+48(SB)/8, $3
DATA winoIdxG<>+56(SB)/8, $11
GLOBL winoIdxG<>(SB), RODATA|NOPTR, $64

DATA winoIdxH<>+0(SB)/8, $4
DATA winoIdxH<>+8(SB)/8, $12
DATA winoIdxH<>+16(SB)/8, $5
DATA winoIdxH<>+24(SB)/8, $13
DATA winoIdxH<>+32(SB)/8, $6
DATA winoIdxH<>+40(SB)/8, $14
DATA winoIdxH<>+48(SB)/8, $7
DATA winoIdxH<>+56(SB)/8, $15
GLOBL winoIdxH<>(SB), RODATA|NOPTR, $64


// IN1D: Z6…Z11 = Bᵀ·(Z0…Z5); Z28 = 4, Z29 = 5; clobbers Z12–Z15.
#define IN1D \
	VMOVAPS Z4, Z12; VFNMADD231PS Z28, Z2, Z12 \ // a = d4 − 4·d2
	VMOVAPS Z3, Z13; VFNMADD231PS Z28, Z1, Z13 \ // b = d3 − 4·d1
	VSUBPS Z2, Z4, Z14 \                         // c = d4 − d2
	VSUBPS Z1, Z3, Z15; VADDPS Z15, Z15, Z15 \   // e = 2·(d3 − d1)
	VMOVAPS Z4, Z6; VFNMADD231PS Z29, Z2, Z6; VFMADD231PS Z28, Z0, Z6 \
	VADDPS Z13, Z12, Z7 \
	VSUBPS Z13, Z12, Z8 \
	VADDPS Z15, Z14, Z9 \
	VSUBPS Z15, Z14, Z10 \
	VMOVAPS Z5, Z11; VFNMADD231PS Z29, Z3, Z11; VFMADD231PS Z28, Z1, Z11

// PHASES(off): from the 64 floats at off(AX) (tiles 0–15 of a strip row, 4 apart) into Z16–Z19,
// Z_lo = phase lo, Z_hi = phase hi where the A (or B) index picks them; uses Z20, Z21.
#define LOAD4(off) \
	VMOVUPS off+0(AX), Z16; VMOVUPS off+64(AX), Z17; VMOVUPS off+128(AX), Z18; VMOVUPS off+192(AX), Z19

#define PHASES(idx, lo, hi) \
	VMOVAPS idx, Z20; VPERMI2PS Z17, Z16, Z20 \
	VMOVAPS idx, Z21; VPERMI2PS Z19, Z18, Z21 \
	VMOVAPS Z26, lo; VPERMI2PS Z21, Z20, lo \
	VMOVAPS Z27, hi; VPERMI2PS Z21, Z20, hi

// ROW(k): row k of the patches (at AX): the six phases, their row transform to scratch (DX).
#define ROW(k) \
	LOAD4(0); PHASES(Z24, Z0, Z1); PHASES(Z25, Z2, Z3) \
	LOAD4(16); PHASES(Z24, Z4, Z5) \
	IN1D \
	VMOVUPS Z6, (k*384+0)(DX); VMOVUPS Z7, (k*384+64)(DX); VMOVUPS Z8, (k*384+128)(DX) \
	VMOVUPS Z9, (k*384+192)(DX); VMOVUPS Z10, (k*384+256)(DX); VMOVUPS Z11, (k*384+320)(DX) \
	ADDQ R9, AX

// COL(j): column j from scratch, its transform to dst rows ξ = 6i + j (R12 walks them).
#define COL(j) \
	VMOVUPS (0*384+j*64)(DX), Z0; VMOVUPS (1*384+j*64)(DX), Z1; VMOVUPS (2*384+j*64)(DX), Z2 \
	VMOVUPS (3*384+j*64)(DX), Z3; VMOVUPS (4*384+j*64)(DX), Z4; VMOVUPS (5*384+j*64)(DX), Z5 \
	IN1D \
	MOVQ R10, R12 \
	VMOVUPS Z6, (R12); ADDQ R11, R12 \
	VMOVUPS Z7, (R12); ADDQ R11, R12 \
	VMOVUPS Z8, (R12); ADDQ R11, R12 \
	VMOVUPS Z9, (R12); ADDQ R11, R12 \
	VMOVUPS Z10, (R12); ADDQ R11, R12 \
	VMOVUPS Z11, (R12) \
	ADDQ R8, R10

// func winoInput16x(dst *float32, ld int, strip *float32, ldr int, n16 int, scratch *float32)
TEXT ·winoInput16x(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ ld+8(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R11
	ADDQ R11, R11 // 6·ld bytes
	MOVQ strip+16(FP), SI
	MOVQ ldr+24(FP), R9
	SHLQ $2, R9
	MOVQ n16+32(FP), CX
	MOVQ scratch+40(FP), DX
	VMOVDQU32 winoIdxA<>(SB), Z24
	VMOVDQU32 winoIdxB<>(SB), Z25
	VMOVDQU32 winoIdxC<>(SB), Z26
	VMOVDQU32 winoIdxD<>(SB), Z27
	MOVL $0x40800000, AX
	VPBROADCASTD AX, Z28 // 4
	MOVL $0x40a00000, AX
	VPBROADCASTD AX, Z29 // 5

inLoop:
	TESTQ CX, CX
	JZ    inDone
	MOVQ  SI, AX
	ROW(0)
	ROW(1)
	ROW(2)
	ROW(3)
	ROW(4)
	ROW(5)
	MOVQ DI, R10
	COL(0)
	COL(1)
	COL(2)
	COL(3)
	COL(4)
	COL(5)
	ADDQ $256, SI
	ADDQ $64, DI
	DECQ CX
	JMP  inLoop

inDone:
	VZEROUPPER
	RET

// OUT1D: Z6…Z9 = Aᵀ·(Z0…Z5); Z28 = 2, Z29 = 4, Z30 = 8; clobbers Z12–Z15.
#define OUT1D \
	VADDPS Z2, Z1, Z12 \ // p = m1 + m2
	VSUBPS Z2, Z1, Z13 \ // q = m1 − m2
	VADDPS Z4, Z3, Z14 \ // r = m3 + m4
	VSUBPS Z4, Z3, Z15 \ // s = m3 − m4
	VADDPS Z12, Z0, Z6; VADDPS Z14, Z6, Z6 \
	VMOVAPS Z13, Z7; VFMADD231PS Z28, Z15, Z7 \
	VMOVAPS Z12, Z8; VFMADD231PS Z29, Z14, Z8 \
	VADDPS Z5, Z13, Z9; VFMADD231PS Z30, Z15, Z9

// OROW(i): row i of the tiles' 6×6 values (m rows ξ = 6i…6i+5, R12 walks them), its row transform
// to scratch.
#define OROW(i) \
	MOVQ R10, R12 \
	VMOVUPS (R12), Z0; ADDQ R8, R12 \
	VMOVUPS (R12), Z1; ADDQ R8, R12 \
	VMOVUPS (R12), Z2; ADDQ R8, R12 \
	VMOVUPS (R12), Z3; ADDQ R8, R12 \
	VMOVUPS (R12), Z4; ADDQ R8, R12 \
	VMOVUPS (R12), Z5 \
	OUT1D \
	VMOVUPS Z6, (i*256+0)(DX); VMOVUPS Z7, (i*256+64)(DX); VMOVUPS Z8, (i*256+128)(DX); VMOVUPS Z9, (i*256+192)(DX) \
	ADDQ R11, R10

// OCOL(s): column s from scratch, its transform plus bias to scratch rows 6…9.
#define OCOL(s) \
	VMOVUPS (0*256+s*64)(DX), Z0; VMOVUPS (1*256+s*64)(DX), Z1; VMOVUPS (2*256+s*64)(DX), Z2 \
	VMOVUPS (3*256+s*64)(DX), Z3; VMOVUPS (4*256+s*64)(DX), Z4; VMOVUPS (5*256+s*64)(DX), Z5 \
	OUT1D \
	VADDPS Z31, Z6, Z6; VADDPS Z31, Z7, Z7; VADDPS Z31, Z8, Z8; VADDPS Z31, Z9, Z9 \
	VMOVUPS Z6, (1536+0*256+s*64)(DX); VMOVUPS Z7, (1536+1*256+s*64)(DX) \
	VMOVUPS Z8, (1536+2*256+s*64)(DX); VMOVUPS Z9, (1536+3*256+s*64)(DX)

// OSTORE(r): output row r of the 16 tiles (64 floats) interleaved from its four columns to R12.
#define OSTORE(r) \
	VMOVUPS (1536+r*256+0)(DX), Z0; VMOVUPS (1536+r*256+64)(DX), Z1 \
	VMOVUPS (1536+r*256+128)(DX), Z2; VMOVUPS (1536+r*256+192)(DX), Z3 \
	VMOVAPS Z24, Z4; VPERMI2PS Z1, Z0, Z4 \
	VMOVAPS Z25, Z5; VPERMI2PS Z1, Z0, Z5 \
	VMOVAPS Z24, Z6; VPERMI2PS Z3, Z2, Z6 \
	VMOVAPS Z25, Z7; VPERMI2PS Z3, Z2, Z7 \
	VMOVAPS Z26, Z8; VPERMI2PD Z6, Z4, Z8 \
	VMOVAPS Z27, Z9; VPERMI2PD Z6, Z4, Z9 \
	VMOVAPS Z26, Z10; VPERMI2PD Z7, Z5, Z10 \
	VMOVAPS Z27, Z11; VPERMI2PD Z7, Z5, Z11 \
	VMOVUPS Z8, (R12); VMOVUPS Z9, 64(R12); VMOVUPS Z10, 128(R12); VMOVUPS Z11, 192(R12) \
	ADDQ R9, R12

// func winoOutput16x(dst *float32, ldo int, m *float32, ld int, n16 int, bias float32, scratch *float32)
TEXT ·winoOutput16x(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ ldo+8(FP), R9
	SHLQ $2, R9
	MOVQ m+16(FP), SI
	MOVQ ld+24(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R11
	ADDQ R11, R11 // 6·ld bytes
	MOVQ n16+32(FP), CX
	VBROADCASTSS bias+40(FP), Z31
	MOVQ scratch+48(FP), DX
	VMOVDQU32 winoIdxE<>(SB), Z24
	VMOVDQU32 winoIdxF<>(SB), Z25
	VMOVDQU64 winoIdxG<>(SB), Z26
	VMOVDQU64 winoIdxH<>(SB), Z27
	MOVL $0x40000000, AX
	VPBROADCASTD AX, Z28 // 2
	MOVL $0x40800000, AX
	VPBROADCASTD AX, Z29 // 4
	MOVL $0x41000000, AX
	VPBROADCASTD AX, Z30 // 8

outLoop:
	TESTQ CX, CX
	JZ    outDone
	MOVQ  SI, R10
	OROW(0)
	OROW(1)
	OROW(2)
	OROW(3)
	OROW(4)
	OROW(5)
	OCOL(0)
	OCOL(1)
	OCOL(2)
	OCOL(3)
	MOVQ DI, R12
	OSTORE(0)
	OSTORE(1)
	OSTORE(2)
	OSTORE(3)
	ADDQ $64, SI
	ADDQ $256, DI
	DECQ CX
	JMP  outLoop

outDone:
	VZEROUPPER
	RET
