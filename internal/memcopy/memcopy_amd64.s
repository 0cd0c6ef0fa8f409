//go:build amd64 && !purego

#include "textflag.h"

// Kernels for Copy on amd64. They require dst[:n] and src[:n] not to
// overlap (Copy checks with disjoint first). They are leaf functions with no
// frame: they cannot be preempted, which is why Copy hands them at most
// chunk bytes at a time.

// func disjoint(dst, src *byte, n int) bool
//
// Reports whether dst[:n] and src[:n] do not overlap: |dst-src| >= n.
TEXT ·disjoint(SB), NOSPLIT, $0-25
	MOVQ	dst+0(FP), DI
	MOVQ	src+8(FP), SI
	MOVQ	n+16(FP), CX
	MOVQ	DI, AX
	SUBQ	SI, AX
	CMPQ	AX, CX
	JB	no
	MOVQ	SI, AX
	SUBQ	DI, AX
	CMPQ	AX, CX
	JB	no
	MOVB	$1, ret+24(FP)
	RET
no:
	MOVB	$0, ret+24(FP)
	RET

// func repMovsb(dst, src *byte, n int)
//
// REP MOVSB for n >= 64. The first 64 bytes are stored with unaligned
// vector moves, then REP MOVSB copies the rest from the first 64-byte
// boundary of dst on: fast-string microcode prefers an aligned
// destination.
TEXT ·repMovsb(SB), NOSPLIT, $0-24
	MOVQ	dst+0(FP), DI
	MOVQ	src+8(FP), SI
	MOVQ	n+16(FP), CX
	MOVOU	0(SI), X0
	MOVOU	16(SI), X1
	MOVOU	32(SI), X2
	MOVOU	48(SI), X3
	MOVOU	X0, 0(DI)
	MOVOU	X1, 16(DI)
	MOVOU	X2, 32(DI)
	MOVOU	X3, 48(DI)
	// k = (-dst) & 63 bytes to the next boundary; 0 when aligned.
	MOVQ	DI, AX
	NEGQ	AX
	ANDQ	$63, AX
	ADDQ	AX, DI
	ADDQ	AX, SI
	SUBQ	AX, CX
	REP;	MOVSB
	RET

// func avxLoop(dst, src *byte, n int)
//
// A temporal-store AVX loop for n >= 256: 128 bytes per iteration, loads
// unaligned, stores aligned to 32 bytes. The head (32 bytes) and the tail
// (128 bytes) are loaded first and stored last, unaligned, so no byte
// outside dst[:n] is written and no byte outside src[:n] is read. This is
// the runtime's memmove loop for 256 B..1 MiB (gobble_128_loop), kept for
// every size: the runtime switches to VMOVNTDQ above 1 MiB, which sends the
// frame past the caches that its reader is about to read it from.
TEXT ·avxLoop(SB), NOSPLIT, $0-24
	MOVQ	dst+0(FP), DI
	MOVQ	src+8(FP), SI
	MOVQ	n+16(FP), BX
	LEAQ	(SI)(BX*1), CX // src end
	LEAQ	(DI)(BX*1), DX // dst end
	VMOVDQU	-128(CX), Y5
	VMOVDQU	-96(CX), Y6
	VMOVDQU	-64(CX), Y7
	VMOVDQU	-32(CX), Y8
	VMOVDQU	(SI), Y4
	MOVQ	DI, R8
	// R10 = 32 - (dst & 31), in 1..32: the head's bytes before dst's
	// next 32-byte boundary (a whole 32 when dst is aligned; the head
	// store covers them either way).
	MOVQ	DI, R10
	ANDQ	$31, R10
	NEGQ	R10
	ADDQ	$32, R10
	ADDQ	R10, DI
	ADDQ	R10, SI
	SUBQ	R10, BX
	// BX >= 256-32 = 224 bytes from DI on; the tail store covers the last
	// 128, the loop at least the rest: ceil((BX-128)/128) blocks, which end
	// before dst end.
	SUBQ	$128, BX
avxloop:
	VMOVDQU	(SI), Y0
	VMOVDQU	32(SI), Y1
	VMOVDQU	64(SI), Y2
	VMOVDQU	96(SI), Y3
	ADDQ	$128, SI
	VMOVDQA	Y0, (DI)
	VMOVDQA	Y1, 32(DI)
	VMOVDQA	Y2, 64(DI)
	VMOVDQA	Y3, 96(DI)
	ADDQ	$128, DI
	SUBQ	$128, BX
	JG	avxloop
	VMOVDQU	Y4, (R8)
	VMOVDQU	Y5, -128(DX)
	VMOVDQU	Y6, -96(DX)
	VMOVDQU	Y7, -64(DX)
	VMOVDQU	Y8, -32(DX)
	VZEROUPPER
	RET

// func cpuid(leaf, sub uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL	leaf+0(FP), AX
	MOVL	sub+4(FP), CX
	CPUID
	MOVL	AX, a+8(FP)
	MOVL	BX, b+12(FP)
	MOVL	CX, c+16(FP)
	MOVL	DX, d+20(FP)
	RET
