// Vector exp macros shared by the kernels' assembly. They read the constant table ·expc
// (exp_amd64.s), whose entries are 32-byte broadcast vectors at these offsets:
#define EXPC_LOG2E ·expc+0(SB)
#define EXPC_LN2HI ·expc+32(SB)
#define EXPC_LN2LO ·expc+64(SB)
#define EXPC_MAX ·expc+96(SB)
#define EXPC_MIN ·expc+128(SB)
#define EXPC_P0 ·expc+160(SB)
#define EXPC_P1 ·expc+192(SB)
#define EXPC_P2 ·expc+224(SB)
#define EXPC_P3 ·expc+256(SB)
#define EXPC_P4 ·expc+288(SB)
#define EXPC_P5 ·expc+320(SB)
#define EXPC_ONE ·expc+352(SB)
#define EXPC_LN2 ·expc+384(SB)
#define EXPC_HALF ·expc+416(SB)
#define EXPC_I127 ·expc+448(SB)
#define EXPC_RSQRT2 ·expc+480(SB)
#define EXPC_A1 ·expc+512(SB)
#define EXPC_A3 ·expc+544(SB)
#define EXPC_A5 ·expc+576(SB)
#define EXPC_A7 ·expc+608(SB)
#define EXPC_A9 ·expc+640(SB)
#define EXPC_A11 ·expc+672(SB)
#define EXPC_A13 ·expc+704(SB)
#define EXPC_B0 ·expc+736(SB)
#define EXPC_B2 ·expc+768(SB)
#define EXPC_B4 ·expc+800(SB)
#define EXPC_B6 ·expc+832(SB)
#define EXPC_B8 ·expc+864(SB)
#define EXPC_4 ·expc+896(SB)
#define EXPC_M4 ·expc+928(SB)
#define EXPC_C9 ·expc+960(SB)
#define EXPC_C8 ·expc+992(SB)
#define EXPC_C7 ·expc+1024(SB)
#define EXPC_C6 ·expc+1056(SB)
#define EXPC_C5 ·expc+1088(SB)
#define EXPC_C4 ·expc+1120(SB)
#define EXPC_C3 ·expc+1152(SB)
#define EXPC_C2 ·expc+1184(SB)
#define EXPC_C1 ·expc+1216(SB)
#define EXPC_C0 ·expc+1248(SB)
#define EXPC_ABS ·expc+1280(SB)
#define EXPC_ERFCMAX ·expc+1312(SB)

// EXP_POLY(r, p): p = e^r for |r| ≤ ln2/2 (Cephes expf polynomial). r is kept.
#define EXP_POLY(r, p) \
	VMOVUPS EXPC_P0, p; \
	VFMADD213PS EXPC_P1, r, p; \
	VFMADD213PS EXPC_P2, r, p; \
	VFMADD213PS EXPC_P3, r, p; \
	VFMADD213PS EXPC_P4, r, p; \
	VFMADD213PS EXPC_P5, r, p; \
	VMULPS r, p, p; \
	VFMADD213PS r, r, p; \
	VADDPS EXPC_ONE, p, p

// EXPPS(x, n, r, t): x = e^x, the vector twin of expGo (NaN propagates: the clamps keep x's NaN
// because x is their second source). n, r, t are scratch.
#define EXPPS(x, n, r, t) \
	VMOVUPS EXPC_MAX, t; \
	VMINPS x, t, x; \
	VMOVUPS EXPC_MIN, t; \
	VMAXPS x, t, x; \
	VMULPS EXPC_LOG2E, x, n; \
	VROUNDPS $0, n, n; \
	VMOVAPS x, r; \
	VFNMADD231PS EXPC_LN2HI, n, r; \
	VFNMADD231PS EXPC_LN2LO, n, r; \
	EXP_POLY(r, x); \
	VCVTPS2DQ n, n; \
	VPSRAD $1, n, t; \
	VPSUBD t, n, n; \
	VPADDD EXPC_I127, t, t; \
	VPSLLD $23, t, t; \
	VMULPS t, x, x; \
	VPADDD EXPC_I127, n, n; \
	VPSLLD $23, n, n; \
	VMULPS n, x, x

