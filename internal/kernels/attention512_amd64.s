#include "textflag.h"
#include "exp_amd64.h"

// Row stride of the score tile in bytes: attnBK floats (attention.go).
#define LDS 256

// One step of the 12-row dot kernel: Z12 holds a row of the key panel, each accumulator gets
// Z12 times its query value, broadcast from memory by the FMA itself.
#define DOT12 \
	VMOVUPS               (R10), Z12       \
	VFMADD231PS.BCST      (AX), Z12, Z0        \
	VFMADD231PS.BCST      (AX)(R8*1), Z12, Z1  \
	VFMADD231PS.BCST      (AX)(R8*2), Z12, Z2  \
	VFMADD231PS.BCST      (BX), Z12, Z3        \
	VFMADD231PS.BCST      (BX)(R8*1), Z12, Z4  \
	VFMADD231PS.BCST      (BX)(R8*2), Z12, Z5  \
	VFMADD231PS.BCST      (R14), Z12, Z6       \
	VFMADD231PS.BCST      (R14)(R8*1), Z12, Z7 \
	VFMADD231PS.BCST      (R14)(R8*2), Z12, Z8 \
	VFMADD231PS.BCST      (R15), Z12, Z9       \
	VFMADD231PS.BCST      (R15)(R8*1), Z12, Z10 \
	VFMADD231PS.BCST      (R15)(R8*2), Z12, Z11

// func attnDot512(rows, d int, q, kp, s *float32)
// For each group of 12 query rows (rows is a multiple of 12): s[i·LDS/4 + c] = Σ_t q[i·d + t]·kp[t·16 + c],
// c < 16. Z0–Z11 accumulate the 12×16 tile, one zmm per row.
TEXT ·attnDot512(SB), NOSPLIT, $0-40
	MOVQ rows+0(FP), CX
	MOVQ d+8(FP), R8
	MOVQ q+16(FP), SI
	MOVQ kp+24(FP), DX
	MOVQ s+32(FP), DI
	MOVQ R8, R13
	SHLQ $2, R8                // query row stride in bytes
	LEAQ (R8)(R8*2), R11       // 3 query rows

d12rows:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	MOVQ   SI, AX
	LEAQ   (SI)(R11*1), BX
	LEAQ   (BX)(R11*1), R14
	LEAQ   (R14)(R11*1), R15
	MOVQ   DX, R10
	MOVQ   R13, R9

d12depth:
	DOT12
	ADDQ $4, AX
	ADDQ $4, BX
	ADDQ $4, R14
	ADDQ $4, R15
	ADDQ $64, R10
	DECQ R9
	JNZ  d12depth

	VMOVUPS Z0, (0*LDS)(DI)
	VMOVUPS Z1, (1*LDS)(DI)
	VMOVUPS Z2, (2*LDS)(DI)
	VMOVUPS Z3, (3*LDS)(DI)
	VMOVUPS Z4, (4*LDS)(DI)
	VMOVUPS Z5, (5*LDS)(DI)
	VMOVUPS Z6, (6*LDS)(DI)
	VMOVUPS Z7, (7*LDS)(DI)
	VMOVUPS Z8, (8*LDS)(DI)
	VMOVUPS Z9, (9*LDS)(DI)
	VMOVUPS Z10, (10*LDS)(DI)
	VMOVUPS Z11, (11*LDS)(DI)
	ADDQ    $(12*LDS), DI
	LEAQ    (SI)(R11*4), SI
	SUBQ    $12, CX
	JG      d12rows
	VZEROUPPER
	RET

// One key step of the 12-row accumulation: Z24 (and Z25) hold 16 (32) columns of a value row;
// each row's probability is broadcast by the FMA from the score tile.
#define ACC12x2(off) \
	VBROADCASTSS (off)(AX), Z26 \
	VFMADD231PS  Z24, Z26, Z0   \
	VFMADD231PS  Z25, Z26, Z1   \
	VBROADCASTSS (LDS+off)(AX), Z27 \
	VFMADD231PS  Z24, Z27, Z2   \
	VFMADD231PS  Z25, Z27, Z3   \
	VBROADCASTSS (2*LDS+off)(AX), Z28 \
	VFMADD231PS  Z24, Z28, Z4   \
	VFMADD231PS  Z25, Z28, Z5   \
	VBROADCASTSS (3*LDS+off)(AX), Z29 \
	VFMADD231PS  Z24, Z29, Z6   \
	VFMADD231PS  Z25, Z29, Z7   \
	VBROADCASTSS (4*LDS+off)(AX), Z30 \
	VFMADD231PS  Z24, Z30, Z8   \
	VFMADD231PS  Z25, Z30, Z9   \
	VBROADCASTSS (5*LDS+off)(AX), Z31 \
	VFMADD231PS  Z24, Z31, Z10  \
	VFMADD231PS  Z25, Z31, Z11  \
	VBROADCASTSS (6*LDS+off)(AX), Z26 \
	VFMADD231PS  Z24, Z26, Z12  \
	VFMADD231PS  Z25, Z26, Z13  \
	VBROADCASTSS (7*LDS+off)(AX), Z27 \
	VFMADD231PS  Z24, Z27, Z14  \
	VFMADD231PS  Z25, Z27, Z15  \
	VBROADCASTSS (8*LDS+off)(AX), Z28 \
	VFMADD231PS  Z24, Z28, Z16  \
	VFMADD231PS  Z25, Z28, Z17  \
	VBROADCASTSS (9*LDS+off)(AX), Z29 \
	VFMADD231PS  Z24, Z29, Z18  \
	VFMADD231PS  Z25, Z29, Z19  \
	VBROADCASTSS (10*LDS+off)(AX), Z30 \
	VFMADD231PS  Z24, Z30, Z20  \
	VFMADD231PS  Z25, Z30, Z21  \
	VBROADCASTSS (11*LDS+off)(AX), Z31 \
	VFMADD231PS  Z24, Z31, Z22  \
	VFMADD231PS  Z25, Z31, Z23

#define ACC12x1 \
	VFMADD231PS.BCST (AX), Z24, Z0 \
	VFMADD231PS.BCST LDS(AX), Z24, Z2 \
	VFMADD231PS.BCST (2*LDS)(AX), Z24, Z4 \
	VFMADD231PS.BCST (3*LDS)(AX), Z24, Z6 \
	VFMADD231PS.BCST (4*LDS)(AX), Z24, Z8 \
	VFMADD231PS.BCST (5*LDS)(AX), Z24, Z10 \
	VFMADD231PS.BCST (6*LDS)(AX), Z24, Z12 \
	VFMADD231PS.BCST (7*LDS)(AX), Z24, Z14 \
	VFMADD231PS.BCST (8*LDS)(AX), Z24, Z16 \
	VFMADD231PS.BCST (9*LDS)(AX), Z24, Z18 \
	VFMADD231PS.BCST (10*LDS)(AX), Z24, Z20 \
	VFMADD231PS.BCST (11*LDS)(AX), Z24, Z22

// Load or store two zmm (32 floats) of one row at r.
#define LOAD2(r, a, b) VMOVUPS r, a; VMOVUPS 64 r, b
#define STORE2(a, b, r) VMOVUPS a, r; VMOVUPS b, 64 r

// func attnAccum512(rows, nk, dp int, s, v, o *float32)
// o[i·dp + c] += Σ_{t<nk} s[i·LDS/4 + t]·v[t·dp + c] for i < rows (a multiple of 12), c < dp (a
// multiple of 8). Columns go 32 at a time (24 accumulators), then a last 8 or 16 under mask K1.
TEXT ·attnAccum512(SB), NOSPLIT, $0-48
	MOVQ rows+0(FP), CX
	MOVQ nk+8(FP), R13
	MOVQ dp+16(FP), R8
	MOVQ s+24(FP), SI
	MOVQ v+32(FP), DX
	MOVQ o+40(FP), DI
	SHLQ $2, R8                // o and v row stride in bytes
	LEAQ (R8)(R8*2), R12       // 3 o rows

a12rows:
	XORQ BX, BX                // column offset in bytes

a12cols:
	MOVQ R8, AX
	SUBQ BX, AX
	CMPQ AX, $128
	JLT  a12tail

	LEAQ (DI)(BX*1), R14
	LEAQ (R14)(R12*2), R15
	MOVQ R14, R9
	LOAD2((R9), Z0, Z1)
	LOAD2((R9)(R8*1), Z2, Z3)
	LOAD2((R9)(R8*2), Z4, Z5)
	ADDQ R12, R9
	LOAD2((R9), Z6, Z7)
	LOAD2((R9)(R8*1), Z8, Z9)
	LOAD2((R9)(R8*2), Z10, Z11)
	LOAD2((R15), Z12, Z13)
	LOAD2((R15)(R8*1), Z14, Z15)
	LOAD2((R15)(R8*2), Z16, Z17)
	ADDQ R12, R15
	LOAD2((R15), Z18, Z19)
	LOAD2((R15)(R8*1), Z20, Z21)
	LOAD2((R15)(R8*2), Z22, Z23)
	SUBQ R12, R15
	MOVQ SI, AX
	LEAQ (DX)(BX*1), R10
	MOVQ R13, R11

a12loop32:
	VMOVUPS (R10), Z24
	VMOVUPS 64(R10), Z25
	ACC12x2(0)
	ADDQ    $4, AX
	ADDQ    R8, R10
	DECQ    R11
	JNZ     a12loop32

	MOVQ R14, R9
	STORE2(Z0, Z1, (R9))
	STORE2(Z2, Z3, (R9)(R8*1))
	STORE2(Z4, Z5, (R9)(R8*2))
	ADDQ R12, R9
	STORE2(Z6, Z7, (R9))
	STORE2(Z8, Z9, (R9)(R8*1))
	STORE2(Z10, Z11, (R9)(R8*2))
	STORE2(Z12, Z13, (R15))
	STORE2(Z14, Z15, (R15)(R8*1))
	STORE2(Z16, Z17, (R15)(R8*2))
	ADDQ R12, R15
	STORE2(Z18, Z19, (R15))
	STORE2(Z20, Z21, (R15)(R8*1))
	STORE2(Z22, Z23, (R15)(R8*2))
	ADDQ $128, BX
	CMPQ BX, R8
	JLT  a12cols
	JMP  a12next

a12tail:
	// 8, 16 or 24 columns remain (AX bytes): one zmm under mask K1 for up to 16, else a full zmm
	// and a masked one are handled as two passes of this block.
	CMPQ AX, $64
	JLE  a12mask
	MOVQ $64, AX

a12mask:
	MOVQ    $0xff, R9          // 8 columns
	CMPQ    AX, $64
	JLT     a12k
	MOVQ    $0xffff, R9        // 16 columns

a12k:
	KMOVW   R9, K1
	LEAQ    (DI)(BX*1), R14
	LEAQ    (R14)(R12*2), R15
	MOVQ    R14, R9
	VMOVUPS.Z (R9), K1, Z0
	VMOVUPS.Z (R9)(R8*1), K1, Z2
	VMOVUPS.Z (R9)(R8*2), K1, Z4
	ADDQ    R12, R9
	VMOVUPS.Z (R9), K1, Z6
	VMOVUPS.Z (R9)(R8*1), K1, Z8
	VMOVUPS.Z (R9)(R8*2), K1, Z10
	VMOVUPS.Z (R15), K1, Z12
	VMOVUPS.Z (R15)(R8*1), K1, Z14
	VMOVUPS.Z (R15)(R8*2), K1, Z16
	ADDQ    R12, R15
	VMOVUPS.Z (R15), K1, Z18
	VMOVUPS.Z (R15)(R8*1), K1, Z20
	VMOVUPS.Z (R15)(R8*2), K1, Z22
	SUBQ    R12, R15
	MOVQ    SI, AX
	LEAQ    (DX)(BX*1), R10
	MOVQ    R13, R11

a12loop16:
	VMOVUPS.Z (R10), K1, Z24
	ACC12x1
	ADDQ    $4, AX
	ADDQ    R8, R10
	DECQ    R11
	JNZ     a12loop16

	MOVQ    R14, R9
	VMOVUPS Z0, K1, (R9)
	VMOVUPS Z2, K1, (R9)(R8*1)
	VMOVUPS Z4, K1, (R9)(R8*2)
	ADDQ    R12, R9
	VMOVUPS Z6, K1, (R9)
	VMOVUPS Z8, K1, (R9)(R8*1)
	VMOVUPS Z10, K1, (R9)(R8*2)
	VMOVUPS Z12, K1, (R15)
	VMOVUPS Z14, K1, (R15)(R8*1)
	VMOVUPS Z16, K1, (R15)(R8*2)
	ADDQ    R12, R15
	VMOVUPS Z18, K1, (R15)
	VMOVUPS Z20, K1, (R15)(R8*1)
	VMOVUPS Z22, K1, (R15)(R8*2)
	ADDQ    $64, BX
	CMPQ    BX, R8
	JLT     a12cols

a12next:
	ADDQ $(12*LDS), SI         // 12 rows of probabilities
	LEAQ (DI)(R12*4), DI
	SUBQ $12, CX
	JG   a12rows
	VZEROUPPER
	RET

// EXP2NEG512(x, n, r): the zmm form of EXP2NEG (exp_amd64.h), with the same operations in the same
// order, so its results equal the AVX2 ones bit for bit; constants are broadcast from ·expc.
#define EXP2NEG512(x, n, r) \
	VMAXPS.BCST      EXPC_M127, x, x; \
	VRNDSCALEPS      $0, x, n; \
	VSUBPS           n, x, x; \
	VBROADCASTSS     EXPC_E0, r; \
	VFMADD213PS.BCST EXPC_E1, x, r; \
	VFMADD213PS.BCST EXPC_E2, x, r; \
	VFMADD213PS.BCST EXPC_E3, x, r; \
	VFMADD213PS.BCST EXPC_E4, x, r; \
	VFMADD213PS.BCST EXPC_E5, x, r; \
	VFMADD213PS.BCST EXPC_ONE, r, x; \
	VCVTPS2DQ        n, n; \
	VPADDD.BCST      EXPC_I127, n, n; \
	VPSLLD           $23, n, n; \
	VMULPS           n, x, x

// func attnSoftmax512(s *float32, nq, n int, m, l, o *float32, dp int)
// The zmm form of attnSoftmaxAVX2 (same arguments and contract): 16 scores per step.
TEXT ·attnSoftmax512(SB), NOSPLIT, $0-56
	MOVQ s+0(FP), SI
	MOVQ nq+8(FP), R8
	MOVQ n+16(FP), R9
	MOVQ m+24(FP), R10
	MOVQ l+32(FP), R11
	MOVQ o+40(FP), DI
	MOVQ dp+48(FP), R12
	SHRQ $4, R9
	SHRQ $3, R12

s5row:
	VBROADCASTSS (R10), Z0
	VMOVAPS      Z0, Z8            // mOld
	MOVQ         SI, AX
	MOVQ         R9, CX

s5max:
	VMAXPS (AX), Z0, Z0
	ADDQ   $64, AX
	DECQ   CX
	JNZ    s5max

	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VPERM2F128    $1, Y0, Y0, Y1
	VMAXPS        Y1, Y0, Y0
	VPERMILPS     $0x4e, Y0, Y1
	VMAXPS        Y1, Y0, Y0
	VPERMILPS     $0xb1, Y0, Y1
	VMAXPS        Y1, Y0, Y0
	VBROADCASTSS  X0, Z15          // mNew in every lane
	MOVSS         X15, (R10)
	VSUBPS        Z15, Z8, Z8      // α = 2^(mOld − mNew)
	EXP2NEG512(Z8, Z9, Z10)
	VPXORD        Z13, Z13, Z13
	MOVQ          SI, AX
	MOVQ          R9, CX

s5exp:
	VMOVUPS (AX), Z0
	VSUBPS  Z15, Z0, Z0
	EXP2NEG512(Z0, Z1, Z2)
	VMOVUPS Z0, (AX)
	VADDPS  Z0, Z13, Z13
	ADDQ    $64, AX
	DECQ    CX
	JNZ     s5exp

	VEXTRACTF64X4 $1, Z13, Y14
	VADDPS        Y14, Y13, Y13
	VEXTRACTF128  $1, Y13, X1
	VADDPS        X1, X13, X0
	VPERMILPS     $0x4e, X0, X1
	VADDPS        X1, X0, X0
	VPERMILPS     $0xb1, X0, X1
	VADDPS        X1, X0, X0       // Σ
	VMOVSS        (R11), X1
	VFMADD231SS   X8, X1, X0       // α·l + Σ
	VMOVSS        X0, (R11)
	MOVQ          R12, CX

s5scale:
	VMULPS  (DI), Y8, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	DECQ    CX
	JNZ     s5scale

	ADDQ $LDS, SI
	ADDQ $4, R10
	ADDQ $4, R11
	DECQ R8
	JNZ  s5row
	VZEROUPPER
	RET
