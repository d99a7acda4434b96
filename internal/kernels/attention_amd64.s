#include "textflag.h"

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
