#include "textflag.h"
#include "exp_amd64.h"

// func actSigmulAVX2(dst, src *float32, n int, k float32)
// dst[i] = x / (1 + e^(−k·x)), x = src[i]; n is a multiple of 8.
TEXT ·actSigmulAVX2(SB), NOSPLIT, $0-28
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS k+24(FP), Y6
	VXORPS       Y7, Y7, Y7
	VSUBPS       Y6, Y7, Y6    // −k
	SHRQ         $3, CX
	JZ           done

loop:
	VMOVUPS (SI), Y4
	VMULPS  Y6, Y4, Y0
	EXPPS(Y0, Y1, Y2, Y3)
	VADDPS  EXPC_ONE, Y0, Y0
	VDIVPS  Y0, Y4, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     loop

done:
	VZEROUPPER
	RET

// GELUPS(x, y, t, p, n, r, u): y = x·Φ(x), the vector twin of actGELUGo: Φ(x) = ½·erfc(|x|/√2)
// for x < 0 and 1 − ½·erfc(|x|/√2) otherwise, with erfc(z) = t·e^(P(t) − z²), t = 1/(1 + z/2)
// (Numerical Recipes' erfcc). z² = x²/2 is carried as hi + lo (exact) and the rounding of
// P(t) − hi is recovered (Fast2Sum), so that e^(…) keeps its relative accuracy in the tail. The
// erfc is computed at min(|x|, 12) and taken as 0 beyond 12 (actErfcMax): x² stays finite for
// infinite x, no intermediate is ever subnormal, and −Inf gives NaN as in PyTorch. x is kept;
// t, p, n, r, u are scratch.
#define GELUPS(x, y, t, p, n, r, u) \
	VANDPS EXPC_ABS, x, y; \
	VMINPS EXPC_ERFCMAX, y, y; \
	VMULPS EXPC_HALF, y, u; \
	VMULPS u, y, r; \
	VMOVAPS r, n; \
	VFMSUB231PS u, y, n; \
	VMULPS EXPC_RSQRT2, y, y; \
	VMULPS EXPC_HALF, y, t; \
	VADDPS EXPC_ONE, t, t; \
	VMOVUPS EXPC_ONE, p; \
	VDIVPS t, p, t; \
	VMOVUPS EXPC_C9, p; \
	VFMADD213PS EXPC_C8, t, p; \
	VFMADD213PS EXPC_C7, t, p; \
	VFMADD213PS EXPC_C6, t, p; \
	VFMADD213PS EXPC_C5, t, p; \
	VFMADD213PS EXPC_C4, t, p; \
	VFMADD213PS EXPC_C3, t, p; \
	VFMADD213PS EXPC_C2, t, p; \
	VFMADD213PS EXPC_C1, t, p; \
	VFMADD213PS EXPC_C0, t, p; \
	VSUBPS r, p, y; \
	VSUBPS y, p, p; \
	VSUBPS r, p, p; \
	VSUBPS n, p, p; \
	VMOVAPS p, u; \
	VMOVAPS y, p; \
	EXPPS(p, n, r, y); \
	VFMADD231PS u, p, p; \
	VMULPS t, p, p; \
	VMULPS EXPC_HALF, p, p; \
	VANDPS EXPC_ABS, x, n; \
	VCMPPS $0x12, EXPC_ERFCMAX, n, n; \
	VANDPS n, p, p; \
	VMOVUPS EXPC_ONE, y; \
	VSUBPS p, y, y; \
	VBLENDVPS x, p, y, y; \
	VMULPS x, y, y

// func actGELUAVX2(dst, src *float32, n int)
TEXT ·actGELUAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   gdone

gloop:
	VMOVUPS (SI), Y0
	GELUPS(Y0, Y1, Y2, Y3, Y4, Y5, Y6)
	VMOVUPS Y1, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     gloop

gdone:
	VZEROUPPER
	RET

// func actGEGLUAVX2(dst, a, gate *float32, n int)
// dst[i] = a[i]·gelu(gate[i]); n is a multiple of 8.
TEXT ·actGEGLUAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ gate+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   edone

eloop:
	VMOVUPS (DX), Y0
	GELUPS(Y0, Y1, Y2, Y3, Y4, Y5, Y6)
	VMULPS  (SI), Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JNZ     eloop

edone:
	VZEROUPPER
	RET

// The AVX-512 forms of the macros above: the same operations in the same order on 16 lanes (so
// the results are bit-identical), with the table's constants broadcast from their first element
// (VRNDSCALEPS for VROUNDPS, a sign mask and VBLENDMPS for VBLENDVPS).
#define EXPPS512(x, n, r, t) \
	VMINPS.BCST EXPC_MAX, x, x; \
	VMAXPS.BCST EXPC_MIN, x, x; \
	VMULPS.BCST EXPC_LOG2E, x, n; \
	VRNDSCALEPS $0, n, n; \
	VMOVAPS x, r; \
	VFNMADD231PS.BCST EXPC_LN2HI, n, r; \
	VFNMADD231PS.BCST EXPC_LN2LO, n, r; \
	VBROADCASTSS EXPC_P0, x; \
	VFMADD213PS.BCST EXPC_P1, r, x; \
	VFMADD213PS.BCST EXPC_P2, r, x; \
	VFMADD213PS.BCST EXPC_P3, r, x; \
	VFMADD213PS.BCST EXPC_P4, r, x; \
	VFMADD213PS.BCST EXPC_P5, r, x; \
	VMULPS r, x, x; \
	VFMADD213PS r, r, x; \
	VADDPS.BCST EXPC_ONE, x, x; \
	VCVTPS2DQ n, n; \
	VPSRAD $1, n, t; \
	VPSUBD t, n, n; \
	VPADDD.BCST EXPC_I127, t, t; \
	VPSLLD $23, t, t; \
	VMULPS t, x, x; \
	VPADDD.BCST EXPC_I127, n, n; \
	VPSLLD $23, n, n; \
	VMULPS n, x, x

#define GELUPS512(x, y, t, p, n, r, u) \
	VPANDD.BCST EXPC_ABS, x, y; \
	VMINPS.BCST EXPC_ERFCMAX, y, y; \
	VMULPS.BCST EXPC_HALF, y, u; \
	VMULPS u, y, r; \
	VMOVAPS r, n; \
	VFMSUB231PS u, y, n; \
	VMULPS.BCST EXPC_RSQRT2, y, y; \
	VMULPS.BCST EXPC_HALF, y, t; \
	VADDPS.BCST EXPC_ONE, t, t; \
	VBROADCASTSS EXPC_ONE, p; \
	VDIVPS t, p, t; \
	VBROADCASTSS EXPC_C9, p; \
	VFMADD213PS.BCST EXPC_C8, t, p; \
	VFMADD213PS.BCST EXPC_C7, t, p; \
	VFMADD213PS.BCST EXPC_C6, t, p; \
	VFMADD213PS.BCST EXPC_C5, t, p; \
	VFMADD213PS.BCST EXPC_C4, t, p; \
	VFMADD213PS.BCST EXPC_C3, t, p; \
	VFMADD213PS.BCST EXPC_C2, t, p; \
	VFMADD213PS.BCST EXPC_C1, t, p; \
	VFMADD213PS.BCST EXPC_C0, t, p; \
	VSUBPS r, p, y; \
	VSUBPS y, p, p; \
	VSUBPS r, p, p; \
	VSUBPS n, p, p; \
	VMOVAPS p, u; \
	VMOVAPS y, p; \
	EXPPS512(p, n, r, y); \
	VFMADD231PS u, p, p; \
	VMULPS t, p, p; \
	VPANDD.BCST EXPC_ABS, x, n; \
	VCMPPS.BCST $0x12, EXPC_ERFCMAX, n, K2; \
	VMULPS.BCST.Z EXPC_HALF, p, K2, p; \
	VBROADCASTSS EXPC_ONE, y; \
	VSUBPS p, y, y; \
	VPMOVD2M x, K1; \
	VBLENDMPS p, y, K1, y; \
	VMULPS x, y, y

// func actGEGLU512(dst, a, gate *float32, n int)
// dst[i] = a[i]·gelu(gate[i]); n is a multiple of 16.
TEXT ·actGEGLU512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ gate+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $4, CX
	JZ   zdone

zloop:
	VMOVUPS (DX), Z0
	GELUPS512(Z0, Z1, Z2, Z3, Z4, Z5, Z6)
	VMULPS  (SI), Z1, Z1
	VMOVUPS Z1, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	DECQ    CX
	JNZ     zloop

zdone:
	VZEROUPPER
	RET
