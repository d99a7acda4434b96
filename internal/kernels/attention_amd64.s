#include "textflag.h"
#include "exp_amd64.h"

// Row stride of the score tile in bytes: attnBK floats (attention.go).
#define LDS 256

// func attnDotAVX2(rows, d int, q, kp, s *float32, lds int)
// For each group of 6 query rows (rows is a multiple of 6): s[i·lds + c] = Σ_t q[i·d + t]·kp[t·16 + c],
// c < 16. Y0–Y11 accumulate the 6×16 tile; Y12, Y13 hold a row of the key panel; Y14, Y15 the
// broadcast query values.
TEXT ·attnDotAVX2(SB), NOSPLIT, $0-48
	MOVQ rows+0(FP), CX
	MOVQ d+8(FP), R8
	MOVQ q+16(FP), SI
	MOVQ kp+24(FP), DX
	MOVQ s+32(FP), DI
	MOVQ lds+40(FP), R9
	MOVQ R8, R13
	SHLQ $2, R8                // query row stride in bytes
	SHLQ $2, R9                // score row stride in bytes
	LEAQ (R8)(R8*2), R11       // 3 query rows
	LEAQ (R9)(R9*2), R12       // 3 score rows

dotrows:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	MOVQ   SI, AX
	LEAQ   (SI)(R11*1), BX
	MOVQ   DX, R10
	MOVQ   R13, R15

dotdepth:
	VMOVUPS      (R10), Y12
	VMOVUPS      32(R10), Y13
	VBROADCASTSS (AX), Y14
	VFMADD231PS  Y12, Y14, Y0
	VFMADD231PS  Y13, Y14, Y1
	VBROADCASTSS (AX)(R8*1), Y15
	VFMADD231PS  Y12, Y15, Y2
	VFMADD231PS  Y13, Y15, Y3
	VBROADCASTSS (AX)(R8*2), Y14
	VFMADD231PS  Y12, Y14, Y4
	VFMADD231PS  Y13, Y14, Y5
	VBROADCASTSS (BX), Y15
	VFMADD231PS  Y12, Y15, Y6
	VFMADD231PS  Y13, Y15, Y7
	VBROADCASTSS (BX)(R8*1), Y14
	VFMADD231PS  Y12, Y14, Y8
	VFMADD231PS  Y13, Y14, Y9
	VBROADCASTSS (BX)(R8*2), Y15
	VFMADD231PS  Y12, Y15, Y10
	VFMADD231PS  Y13, Y15, Y11
	ADDQ         $4, AX
	ADDQ         $4, BX
	ADDQ         $64, R10
	DECQ         R15
	JNZ          dotdepth

	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, (DI)(R9*1)
	VMOVUPS Y3, 32(DI)(R9*1)
	VMOVUPS Y4, (DI)(R9*2)
	VMOVUPS Y5, 32(DI)(R9*2)
	LEAQ    (DI)(R12*1), R14
	VMOVUPS Y6, (R14)
	VMOVUPS Y7, 32(R14)
	VMOVUPS Y8, (R14)(R9*1)
	VMOVUPS Y9, 32(R14)(R9*1)
	VMOVUPS Y10, (R14)(R9*2)
	VMOVUPS Y11, 32(R14)(R9*2)
	LEAQ    (SI)(R11*2), SI
	LEAQ    (DI)(R12*2), DI
	SUBQ    $6, CX
	JG      dotrows
	VZEROUPPER
	RET

// func attnAccumAVX2(rows, nk, dp int, s, v, o *float32)
// o[i·dp + c] += Σ_{t<nk} s[i·LDS/4 + t]·v[t·dp + c] for i < rows (a multiple of 6), c < dp (a multiple
// of 8). Columns go 16 at a time (12 accumulators), then a last 8 if dp is not a multiple of 16.
TEXT ·attnAccumAVX2(SB), NOSPLIT, $0-48
	MOVQ rows+0(FP), CX
	MOVQ nk+8(FP), R13
	MOVQ dp+16(FP), R8
	MOVQ s+24(FP), SI
	MOVQ v+32(FP), DX
	MOVQ o+40(FP), DI
	SHLQ $2, R8                // o and v row stride in bytes
	LEAQ (R8)(R8*2), R12       // 3 o rows

accrows:
	XORQ BX, BX                // column offset in bytes

acccols:
	MOVQ R8, AX
	SUBQ BX, AX
	CMPQ AX, $64
	JLT  acc8

	// 6×16 tile of o at column offset BX.
	LEAQ    (DI)(BX*1), R14
	LEAQ    (R14)(R12*1), R15
	VMOVUPS (R14), Y0
	VMOVUPS 32(R14), Y1
	VMOVUPS (R14)(R8*1), Y2
	VMOVUPS 32(R14)(R8*1), Y3
	VMOVUPS (R14)(R8*2), Y4
	VMOVUPS 32(R14)(R8*2), Y5
	VMOVUPS (R15), Y6
	VMOVUPS 32(R15), Y7
	VMOVUPS (R15)(R8*1), Y8
	VMOVUPS 32(R15)(R8*1), Y9
	VMOVUPS (R15)(R8*2), Y10
	VMOVUPS 32(R15)(R8*2), Y11
	MOVQ    SI, AX
	LEAQ    (DX)(BX*1), R10
	MOVQ    R13, R11

acc16:
	VMOVUPS      (R10), Y12
	VMOVUPS      32(R10), Y13
	VBROADCASTSS (AX), Y14
	VFMADD231PS  Y12, Y14, Y0
	VFMADD231PS  Y13, Y14, Y1
	VBROADCASTSS LDS(AX), Y15
	VFMADD231PS  Y12, Y15, Y2
	VFMADD231PS  Y13, Y15, Y3
	VBROADCASTSS (2*LDS)(AX), Y14
	VFMADD231PS  Y12, Y14, Y4
	VFMADD231PS  Y13, Y14, Y5
	VBROADCASTSS (3*LDS)(AX), Y15
	VFMADD231PS  Y12, Y15, Y6
	VFMADD231PS  Y13, Y15, Y7
	VBROADCASTSS (4*LDS)(AX), Y14
	VFMADD231PS  Y12, Y14, Y8
	VFMADD231PS  Y13, Y14, Y9
	VBROADCASTSS (5*LDS)(AX), Y15
	VFMADD231PS  Y12, Y15, Y10
	VFMADD231PS  Y13, Y15, Y11
	ADDQ         $4, AX
	ADDQ         R8, R10
	DECQ         R11
	JNZ          acc16

	VMOVUPS Y0, (R14)
	VMOVUPS Y1, 32(R14)
	VMOVUPS Y2, (R14)(R8*1)
	VMOVUPS Y3, 32(R14)(R8*1)
	VMOVUPS Y4, (R14)(R8*2)
	VMOVUPS Y5, 32(R14)(R8*2)
	VMOVUPS Y6, (R15)
	VMOVUPS Y7, 32(R15)
	VMOVUPS Y8, (R15)(R8*1)
	VMOVUPS Y9, 32(R15)(R8*1)
	VMOVUPS Y10, (R15)(R8*2)
	VMOVUPS Y11, 32(R15)(R8*2)
	ADDQ    $64, BX
	CMPQ    BX, R8
	JLT     acccols
	JMP     accnext

acc8:
	// 6×8 tile: the last 8 columns. Two keys per step into two sets of accumulators (Y0, Y2, …
	// for even keys, Y1, Y3, … for odd ones), so that twelve FMA chains are in flight.
	LEAQ    (DI)(BX*1), R14
	LEAQ    (R14)(R12*1), R15
	VMOVUPS (R14), Y0
	VMOVUPS (R14)(R8*1), Y2
	VMOVUPS (R14)(R8*2), Y4
	VMOVUPS (R15), Y6
	VMOVUPS (R15)(R8*1), Y8
	VMOVUPS (R15)(R8*2), Y10
	VXORPS  Y1, Y1, Y1
	VXORPS  Y3, Y3, Y3
	VXORPS  Y5, Y5, Y5
	VXORPS  Y7, Y7, Y7
	VXORPS  Y9, Y9, Y9
	VXORPS  Y11, Y11, Y11
	MOVQ    SI, AX
	LEAQ    (DX)(BX*1), R10
	MOVQ    R13, R11
	SHRQ    $1, R11
	JZ      acc8odd

acc8loop:
	VMOVUPS      (R10), Y12
	VMOVUPS      (R10)(R8*1), Y13
	VBROADCASTSS (AX), Y14
	VFMADD231PS  Y12, Y14, Y0
	VBROADCASTSS 4(AX), Y15
	VFMADD231PS  Y13, Y15, Y1
	VBROADCASTSS LDS(AX), Y14
	VFMADD231PS  Y12, Y14, Y2
	VBROADCASTSS (LDS+4)(AX), Y15
	VFMADD231PS  Y13, Y15, Y3
	VBROADCASTSS (2*LDS)(AX), Y14
	VFMADD231PS  Y12, Y14, Y4
	VBROADCASTSS (2*LDS+4)(AX), Y15
	VFMADD231PS  Y13, Y15, Y5
	VBROADCASTSS (3*LDS)(AX), Y14
	VFMADD231PS  Y12, Y14, Y6
	VBROADCASTSS (3*LDS+4)(AX), Y15
	VFMADD231PS  Y13, Y15, Y7
	VBROADCASTSS (4*LDS)(AX), Y14
	VFMADD231PS  Y12, Y14, Y8
	VBROADCASTSS (4*LDS+4)(AX), Y15
	VFMADD231PS  Y13, Y15, Y9
	VBROADCASTSS (5*LDS)(AX), Y14
	VFMADD231PS  Y12, Y14, Y10
	VBROADCASTSS (5*LDS+4)(AX), Y15
	VFMADD231PS  Y13, Y15, Y11
	ADDQ         $8, AX
	LEAQ         (R10)(R8*2), R10
	DECQ         R11
	JNZ          acc8loop

acc8odd:
	TESTQ        $1, R13
	JZ           acc8store
	VMOVUPS      (R10), Y12
	VBROADCASTSS (AX), Y14
	VFMADD231PS  Y12, Y14, Y0
	VBROADCASTSS LDS(AX), Y15
	VFMADD231PS  Y12, Y15, Y2
	VBROADCASTSS (2*LDS)(AX), Y14
	VFMADD231PS  Y12, Y14, Y4
	VBROADCASTSS (3*LDS)(AX), Y15
	VFMADD231PS  Y12, Y15, Y6
	VBROADCASTSS (4*LDS)(AX), Y14
	VFMADD231PS  Y12, Y14, Y8
	VBROADCASTSS (5*LDS)(AX), Y15
	VFMADD231PS  Y12, Y15, Y10

acc8store:
	VADDPS  Y1, Y0, Y0
	VADDPS  Y3, Y2, Y2
	VADDPS  Y5, Y4, Y4
	VADDPS  Y7, Y6, Y6
	VADDPS  Y9, Y8, Y8
	VADDPS  Y11, Y10, Y10
	VMOVUPS Y0, (R14)
	VMOVUPS Y2, (R14)(R8*1)
	VMOVUPS Y4, (R14)(R8*2)
	VMOVUPS Y6, (R15)
	VMOVUPS Y8, (R15)(R8*1)
	VMOVUPS Y10, (R15)(R8*2)

accnext:
	ADDQ $(6*LDS), SI          // 6 rows of probabilities
	LEAQ (DI)(R12*2), DI
	SUBQ $6, CX
	JG   accrows
	VZEROUPPER
	RET

// func attnSoftmaxAVX2(s *float32, nq, n int, m, l, o *float32, dp int)
// The online-softmax step for the first nq rows of a score tile (row stride LDS bytes, n a multiple
// of 16 columns), per row i: mNew = max(m[i], max s_i); s_i = 2^(s_i − mNew); α = 2^(m[i] − mNew);
// l[i] = α·l[i] + Σ s_i; m[i] = mNew; o_i (dp floats, a multiple of 8) *= α.
TEXT ·attnSoftmaxAVX2(SB), NOSPLIT, $0-56
	MOVQ s+0(FP), SI
	MOVQ nq+8(FP), R8
	MOVQ n+16(FP), R9
	MOVQ m+24(FP), R10
	MOVQ l+32(FP), R11
	MOVQ o+40(FP), DI
	MOVQ dp+48(FP), R12
	SHRQ $4, R9
	SHRQ $3, R12

smrow:
	VBROADCASTSS (R10), Y0
	VMOVAPS      Y0, Y8            // mOld
	VMOVAPS      Y0, Y1
	MOVQ         SI, AX
	MOVQ         R9, CX

smmax:
	VMAXPS (AX), Y0, Y0
	VMAXPS 32(AX), Y1, Y1
	ADDQ   $64, AX
	DECQ   CX
	JNZ    smmax

	VMAXPS       Y1, Y0, Y0
	VPERM2F128   $1, Y0, Y0, Y1
	VMAXPS       Y1, Y0, Y0
	VPERMILPS    $0x4e, Y0, Y1
	VMAXPS       Y1, Y0, Y0
	VPERMILPS    $0xb1, Y0, Y1
	VMAXPS       Y1, Y0, Y15       // mNew in every lane
	MOVSS        X15, (R10)
	VSUBPS       Y15, Y8, Y8       // α = 2^(mOld − mNew)
	EXP2NEG(Y8, Y9, Y10)
	VXORPS       Y13, Y13, Y13
	VXORPS       Y14, Y14, Y14
	MOVQ         SI, AX
	MOVQ         R9, CX

smexp:
	VMOVUPS (AX), Y0
	VMOVUPS 32(AX), Y4
	VSUBPS  Y15, Y0, Y0
	VSUBPS  Y15, Y4, Y4
	EXP2NEG(Y0, Y1, Y2)
	EXP2NEG(Y4, Y5, Y6)
	VMOVUPS Y0, (AX)
	VMOVUPS Y4, 32(AX)
	VADDPS  Y0, Y13, Y13
	VADDPS  Y4, Y14, Y14
	ADDQ    $64, AX
	DECQ    CX
	JNZ     smexp

	VADDPS       Y14, Y13, Y13
	VEXTRACTF128 $1, Y13, X1
	VADDPS       X1, X13, X0
	VPERMILPS    $0x4e, X0, X1
	VADDPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VADDPS       X1, X0, X0        // Σ
	VMOVSS       (R11), X1
	VFMADD231SS  X8, X1, X0        // α·l + Σ
	VMOVSS       X0, (R11)
	MOVQ         R12, CX

smscale:
	VMULPS  (DI), Y8, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	DECQ    CX
	JNZ     smscale

	ADDQ $LDS, SI
	ADDQ $4, R10
	ADDQ $4, R11
	DECQ R8
	JNZ  smrow
	VZEROUPPER
	RET

// func attnPrefetch(p *float32, rows, stride, n int)
// Prefetches n bytes (rounded up to lines) at p, p+stride, … for rows rows (stride in bytes).
TEXT ·attnPrefetch(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ rows+8(FP), CX
	MOVQ stride+16(FP), DX
	MOVQ n+24(FP), R8
	TESTQ CX, CX
	JZ   pfdone

pfrow:
	XORQ AX, AX

pfline:
	PREFETCHT0 (SI)(AX*1)
	ADDQ       $64, AX
	CMPQ       AX, R8
	JLT        pfline
	PREFETCHT0 -1(SI)(R8*1)    // the last line, when the row straddles one more
	ADDQ       DX, SI
	DECQ       CX
	JNZ        pfrow

pfdone:
	RET
