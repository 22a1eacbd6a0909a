//go:build amd64 && !noasm

// The AVX2 quant sums of the Q3_K kernel (kernel_ggml_q3k.go): for each
// super-block, the q3kSums word of each of its sixteen sub-blocks, as
// ggmlSumsQ3_KGo writes it. A 32-byte row of qs (one 128-value half h) and
// the 32 bytes of hmask line up lane by lane with sub-blocks 8h + 2k (low
// lane, s = 0) and 8h + 2k + 1 (high lane): the code c = q' + 4 of each
// value is bit pair k of qs with bit 4h + k of hmask above it. Then, per
// 8 bytes, VPSADBW against zero gives Σc, the codes 4 (q' = 0) counted by
// VPCMPEQB, and Σq'² through a VPSHUFB table of (c − 4)²; each is placed in
// its field of the 64-bit lanes (bits 0-15, 16-31, 32-47: at most 112, 16
// and 256 per sub-block, so none carries) and the two lanes of each
// sub-block added.
//
// Registers: SI super-blocks, CX super-blocks left, DI words, Y0 and Y1 the
// two rows of qs, Y2 hmask, Y9 the byte 1, Y10 the byte 4, Y11 the table,
// Y13 the byte 3, Y14 zero; Y3-Y7 scratch.

#include "textflag.h"

DATA q3kSquares<>+0(SB)/8, $0x0904010001040910
DATA q3kSquares<>+8(SB)/8, $0
DATA q3kSquares<>+16(SB)/8, $0x0904010001040910
DATA q3kSquares<>+24(SB)/8, $0
GLOBL q3kSquares<>(SB), RODATA|NOPTR, $32

DATA q3kOne<>+0(SB)/8, $0x0101010101010101
GLOBL q3kOne<>(SB), RODATA|NOPTR, $8

DATA q3kFour<>+0(SB)/8, $0x0404040404040404
GLOBL q3kFour<>(SB), RODATA|NOPTR, $8

DATA q3kThree<>+0(SB)/8, $0x0303030303030303
GLOBL q3kThree<>(SB), RODATA|NOPTR, $8

// Q3WORDS writes the q3kSums words of the two sub-blocks whose codes are
// the bytes of Y6 (one per 128-bit lane) to dst(DI), dst+8(DI).
#define Q3WORDS(dst) \
	VPSADBW Y14, Y6, Y3 \
	VPCMPEQB Y10, Y6, Y4 \
	VPAND Y9, Y4, Y4 \
	VPSADBW Y14, Y4, Y4 \
	VPSLLQ $16, Y4, Y4 \
	VPADDQ Y4, Y3, Y3 \
	VPSHUFB Y6, Y11, Y4 \
	VPSADBW Y14, Y4, Y4 \
	VPSLLQ $32, Y4, Y4 \
	VPADDQ Y4, Y3, Y3 \
	VPSHUFD $0x4E, Y3, Y4 \
	VPADDQ Y4, Y3, Y3 \
	VPERMQ $0x08, Y3, Y3 \
	VMOVDQU X3, dst(DI)

// Q3PAIR makes the codes of sub-blocks 8h + 2k and 8h + 2k + 1 from Q (the
// row of half h) shifted right by qs = 2k and hmask shifted by HOP hs to
// bring bit 4h + k to bit 2, and writes their words to dst(DI).
#define Q3PAIR(Q, qs, HOP, hs, dst) \
	VPSRLW $qs, Q, Y6 \
	VPAND Y13, Y6, Y6 \
	HOP $hs, Y2, Y7 \
	VPAND Y10, Y7, Y7 \
	VPOR Y7, Y6, Y6 \
	Q3WORDS(dst)

// func ggmlSumsQ3_KAsm(p *byte, n int, out *uint64)
TEXT ·ggmlSumsQ3_KAsm(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE q3kdone
	VPBROADCASTQ q3kOne<>(SB), Y9
	VPBROADCASTQ q3kFour<>(SB), Y10
	VMOVDQU q3kSquares<>(SB), Y11
	VPBROADCASTQ q3kThree<>(SB), Y13
	VPXOR Y14, Y14, Y14

q3kloop:
	VMOVDQU 0(SI), Y2
	VMOVDQU 32(SI), Y0
	VMOVDQU 64(SI), Y1
	Q3PAIR(Y0, 0, VPSLLW, 2, 0)
	Q3PAIR(Y0, 2, VPSLLW, 1, 16)
	Q3PAIR(Y0, 4, VPSRLW, 0, 32)
	Q3PAIR(Y0, 6, VPSRLW, 1, 48)
	Q3PAIR(Y1, 0, VPSRLW, 2, 64)
	Q3PAIR(Y1, 2, VPSRLW, 3, 80)
	Q3PAIR(Y1, 4, VPSRLW, 4, 96)
	Q3PAIR(Y1, 6, VPSRLW, 5, 112)
	ADDQ $110, SI
	ADDQ $128, DI
	DECQ CX
	JNZ q3kloop
	VZEROUPPER

q3kdone:
	RET
