//go:build amd64 && !noasm

// The Q2_K code sums in AVX2 (ggmlSumsQ2_K, kernel_ggml_q2k.go): a
// super-block's 64 bytes of codes in two YMM registers (groups 0 and 1,
// then 2 and 3: 16 bytes each), and for each code pair k the codes
// (VPSRLW by 2k, VPAND with the byte 3), their byte sums by VPSADBW and the
// sums of their squares (0, 1, 4, 9 by VPSHUFB) by VPSADBW, placed in byte
// k and byte 4+k of each 64-bit lane as q2kSums places them; then the two
// lanes of each group added and the two groups' words stored. Per lane (8
// bytes) the fields stay below 25 and 73, per group below 49 and 145: no
// field carries into the next.
//
// Registers: SI super-blocks, CX super-blocks left, DI words, Y11 the
// squares, Y13 the byte 3, Y14 zero; Y0-Y4 scratch, Y5 the sums.

#include "textflag.h"

DATA q2kSquares<>+0(SB)/8, $0x0000000009040100
DATA q2kSquares<>+8(SB)/8, $0
DATA q2kSquares<>+16(SB)/8, $0x0000000009040100
DATA q2kSquares<>+24(SB)/8, $0
GLOBL q2kSquares<>(SB), RODATA|NOPTR, $32

DATA q2kThree<>+0(SB)/8, $0x0303030303030303
GLOBL q2kThree<>(SB), RODATA|NOPTR, $8

// Q2PAIR adds to Y5 the fields of code pair k (at bit 2k of each byte of
// Y0): Σq in byte k, Σq² in byte 4+k of each lane.
#define Q2PAIR(k) \
	VPSRLW $(2*k), Y0, Y1 \
	VPAND Y13, Y1, Y1 \
	VPSHUFB Y1, Y11, Y2 \
	VPSADBW Y14, Y1, Y1 \
	VPSADBW Y14, Y2, Y2 \
	VPSLLQ $(8*k), Y1, Y1 \
	VPSLLQ $(32+8*k), Y2, Y2 \
	VPADDQ Y1, Y5, Y5 \
	VPADDQ Y2, Y5, Y5

// Q2GROUPS writes the q2kSums words of the two groups of codes at off(SI)
// (32 bytes) to dst(DI) and dst+8(DI).
#define Q2GROUPS(off, dst) \
	VMOVDQU off(SI), Y0 \
	VPXOR Y5, Y5, Y5 \
	Q2PAIR(0) \
	Q2PAIR(1) \
	Q2PAIR(2) \
	Q2PAIR(3) \
	VPSHUFD $0x4E, Y5, Y1 \
	VPADDQ Y1, Y5, Y5 \
	VPERMQ $0x08, Y5, Y5 \
	VMOVDQU X5, dst(DI)

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
	Q2GROUPS(16, 0)
	Q2GROUPS(48, 16)
	ADDQ $84, SI
	ADDQ $32, DI
	DECQ CX
	JNZ q2kloop
	VZEROUPPER

q2kdone:
	RET
