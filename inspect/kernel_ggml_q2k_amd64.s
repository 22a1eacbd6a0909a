//go:build amd64 && !noasm

// The Q2_K code sums in AVX2 (ggmlSumsQ2_K, kernel_ggml_q2k.go): a half
// super-block's 32 bytes of codes in a YMM register (groups 2h and 2h+1 of
// 16 bytes: the 64-bit lanes 0 and 1, 2 and 3), and for each code pair k
// the codes (VPSRLW by 2k, VPAND with the byte 3), their byte sums by
// VPSADBW and the sums of their squares (0, 1, 4, 9 by VPSHUFB) by VPSADBW
// in bits 32 up: per lane (8 bytes) below 25 and 73. Code pairs k and k+1
// are then interleaved (VPUNPCKLQDQ, VPUNPCKHQDQ) and added, which leaves
// each group's sums of pair k in lane 0 (group 2h) and 2 (group 2h+1), of
// pair k+1 in lanes 1 and 3; the upper half shifted left by 16 and added to
// the lower gives the words of sub-blocks 8h+2k, 8h+2k+1 and the next two,
// as q2kPairs places them (below 2^16 each field: no carry).
//
// Registers: SI super-blocks, CX super-blocks left, DI words, Y11 the
// squares, Y13 the byte 3, Y14 zero; Y0-Y4, Y6-Y9 scratch.

#include "textflag.h"

DATA q2kSquares<>+0(SB)/8, $0x0000000009040100
DATA q2kSquares<>+8(SB)/8, $0
DATA q2kSquares<>+16(SB)/8, $0x0000000009040100
DATA q2kSquares<>+24(SB)/8, $0
GLOBL q2kSquares<>(SB), RODATA|NOPTR, $32

DATA q2kThree<>+0(SB)/8, $0x0303030303030303
GLOBL q2kThree<>(SB), RODATA|NOPTR, $8

// Q2PAIR leaves in R the sums of code pair k of Y0's bytes, per lane: Σq in
// bits 0 up, Σq² in bits 32 up.
#define Q2PAIR(k, R) \
	VPSRLW $(2*k), Y0, Y1 \
	VPAND Y13, Y1, Y1 \
	VPSHUFB Y1, Y11, Y2 \
	VPSADBW Y14, Y1, R \
	VPSADBW Y14, Y2, Y2 \
	VPSLLQ $32, Y2, Y2 \
	VPADDQ Y2, R, R

// Q2JOIN writes the words of pairs k and k+1 (their sums in A and B) to
// dst(DI) and dst+8(DI).
#define Q2JOIN(A, B, dst) \
	VPUNPCKLQDQ B, A, Y1 \
	VPUNPCKHQDQ B, A, Y2 \
	VPADDQ Y2, Y1, Y1 \
	VEXTRACTI128 $1, Y1, X2 \
	VPSLLQ $16, X2, X2 \
	VPADDQ X2, X1, X1 \
	VMOVDQU X1, dst(DI)

// Q2HALF writes the four words of the half super-block whose codes are at
// off(SI) to dst(DI) to dst+24(DI).
#define Q2HALF(off, dst) \
	VMOVDQU off(SI), Y0 \
	Q2PAIR(0, Y6) \
	Q2PAIR(1, Y7) \
	Q2PAIR(2, Y8) \
	Q2PAIR(3, Y9) \
	Q2JOIN(Y6, Y7, dst) \
	Q2JOIN(Y8, Y9, dst+16)

// func ggmlSumsQ2_KAsm(p *byte, n int, out *uint64)
TEXT ·ggmlSumsQ2_KAsm(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE q2kdone
	VMOVDQU q2kSquares<>(SB), Y11
	VPBROADCASTQ q2kThree<>(SB), Y13
	VPXOR Y14, Y14, Y14

q2kloop:
	Q2HALF(16, 0)
	Q2HALF(48, 32)
	ADDQ $84, SI
	ADDQ $64, DI
	DECQ CX
	JNZ q2kloop
	VZEROUPPER

q2kdone:
	RET
