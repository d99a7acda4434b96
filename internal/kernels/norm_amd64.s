#include "textflag.h"
#include "exp_amd64.h"

// func normMomentsAVX2(x *float32, n int, shift float64) (s1, s2 float64)
// s1 = Σ (x[i] − shift), s2 = Σ (x[i] − shift)² for n a multiple of 8, in float64.
TEXT ·normMomentsAVX2(SB), NOSPLIT, $0-40
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSD shift+16(FP), Y8
	SHRQ         $3, CX
	VXORPD       Y0, Y0, Y0
	VXORPD       Y1, Y1, Y1
	VXORPD       Y2, Y2, Y2
	VXORPD       Y3, Y3, Y3

momloop:
	VCVTPS2PD   (SI), Y4
	VCVTPS2PD   16(SI), Y5
	VSUBPD      Y8, Y4, Y4
	VSUBPD      Y8, Y5, Y5
	VADDPD      Y4, Y0, Y0
	VADDPD      Y5, Y1, Y1
	VFMADD231PD Y4, Y4, Y2
	VFMADD231PD Y5, Y5, Y3
	ADDQ        $32, SI
	DECQ        CX
	JNZ         momloop

	VADDPD       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD       X1, X0, X0
	VPERMILPD    $1, X0, X1
	VADDSD       X1, X0, X0
	VMOVSD       X0, s1+24(FP)
	VADDPD       Y3, Y2, Y2
	VEXTRACTF128 $1, Y2, X1
	VADDPD       X1, X2, X2
	VPERMILPD    $1, X2, X1
	VADDSD       X1, X2, X2
	VMOVSD       X2, s2+32(FP)
	VZEROUPPER
	RET

// func normAffineAVX2(x, y *float32, n int, m, s, b float32, silu bool)
// y = (x − m)·s + b, then y·sigmoid(y) if silu; n is a multiple of 8.
TEXT ·normAffineAVX2(SB), NOSPLIT, $0-37
	MOVQ         x+0(FP), SI
	MOVQ         y+8(FP), DI
	MOVQ         n+16(FP), CX
	VBROADCASTSS m+24(FP), Y8
	VBROADCASTSS s+28(FP), Y9
	VBROADCASTSS b+32(FP), Y10
	VXORPS       Y11, Y11, Y11
	SHRQ         $3, CX
	JZ           afdone
	MOVBLZX      silu+36(FP), AX
	TESTQ        AX, AX
	JNZ          afsilu

afloop:
	VMOVUPS     (SI), Y0
	VSUBPS      Y8, Y0, Y0
	VFMADD213PS Y10, Y9, Y0
	VMOVUPS     Y0, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	DECQ        CX
	JNZ         afloop
	JMP         afdone

afsilu:
	VMOVUPS     (SI), Y4
	VSUBPS      Y8, Y4, Y4
	VFMADD213PS Y10, Y9, Y4
	VSUBPS      Y4, Y11, Y0    // −y
	EXPPS(Y0, Y1, Y2, Y3)
	VADDPS      EXPC_ONE, Y0, Y0
	VDIVPS      Y0, Y4, Y0
	VMOVUPS     Y0, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	DECQ        CX
	JNZ         afsilu

afdone:
	VZEROUPPER
	RET

// func normRowAVX2(x, y, gamma, beta *float32, n int, m, s float32)
// y = (x − m)·s·gamma + beta; n is a multiple of 8.
TEXT ·normRowAVX2(SB), NOSPLIT, $0-48
	MOVQ         x+0(FP), SI
	MOVQ         y+8(FP), DI
	MOVQ         gamma+16(FP), AX
	MOVQ         beta+24(FP), BX
	MOVQ         n+32(FP), CX
	VBROADCASTSS m+40(FP), Y8
	VBROADCASTSS s+44(FP), Y9
	SHRQ         $3, CX
	JZ           nrdone

nrloop:
	VMOVUPS     (SI), Y0
	VSUBPS      Y8, Y0, Y0
	VMULPS      Y9, Y0, Y0
	VMULPS      (AX), Y0, Y0
	VADDPS      (BX), Y0, Y0
	VMOVUPS     Y0, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	ADDQ        $32, AX
	ADDQ        $32, BX
	DECQ        CX
	JNZ         nrloop

nrdone:
	VZEROUPPER
	RET
