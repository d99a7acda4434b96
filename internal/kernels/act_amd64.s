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

// ERFPS(x, p, q): x = erf(x), the rational approximation of actErfGo. p, q are scratch.
#define ERFPS(x, p, q) \
	VMINPS EXPC_4, x, x; \
	VMAXPS EXPC_M4, x, x; \
	VMULPS x, x, q; \
	VMOVUPS EXPC_A1, p; \
	VFMADD213PS EXPC_A3, q, p; \
	VFMADD213PS EXPC_A5, q, p; \
	VFMADD213PS EXPC_A7, q, p; \
	VFMADD213PS EXPC_A9, q, p; \
	VFMADD213PS EXPC_A11, q, p; \
	VFMADD213PS EXPC_A13, q, p; \
	VMULPS p, x, x; \
	VMOVUPS EXPC_B0, p; \
	VFMADD213PS EXPC_B2, q, p; \
	VFMADD213PS EXPC_B4, q, p; \
	VFMADD213PS EXPC_B6, q, p; \
	VFMADD213PS EXPC_B8, q, p; \
	VDIVPS p, x, x

// GELUPS(x, y, p, q): y = 0.5·x·(1 + erf(x/√2)); x is kept.
#define GELUPS(x, y, p, q) \
	VMULPS EXPC_RSQRT2, x, y; \
	ERFPS(y, p, q); \
	VADDPS EXPC_ONE, y, y; \
	VMULPS EXPC_HALF, x, p; \
	VMULPS p, y, y

// func actGELUAVX2(dst, src *float32, n int)
TEXT ·actGELUAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   gdone

gloop:
	VMOVUPS (SI), Y0
	GELUPS(Y0, Y1, Y2, Y3)
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
	GELUPS(Y0, Y1, Y2, Y3)
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
