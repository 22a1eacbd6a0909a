//go:build amd64 && !noasm

// The AVX2 quant sums of the Q3_K kernel (kernel_ggml_q3k.go): for each
// super-block, the q3kSums word of each of its sixteen sub-blocks, as
// ggmlSumsQ3_KGo writes it. A 32-byte row of qs (one 128-value half h) and
// the 32 bytes of hmask line up lane by lane with sub-blocks 8h + 2k (low
// lane, s = 0) and 8h + 2k + 1 (high lane): the code c = q' + 4 of each
// value is bit pair k of qs with bit 4h + k of hmask above it. Then, per
// 8 bytes, VPSADBW against zero gives Σc, the codes 4 (q' = 0) counted by
// VPCMPEQB, Σq'² through a VPSHUFB table of (c − 4)², and the codes above 3
// (q' ≥ 0) by VPCMPGTB; each is placed in its field of the 64-bit lanes
// (bits 0-15, 16-31, 32-47, 48-63: at most 112, 16, 256 and 16 per
// sub-block, so none carries) and the two lanes of each sub-block added.
// Then (ggmlSupersQ3_KAsm) each super-block's q3kSuper from its words and
// scales, four sub-blocks to a register.
//
// Registers: SI super-blocks, CX super-blocks left, DI words, Y0 and Y1 the
// two rows of qs, Y2 hmask, Y9 the byte 1, Y10 the byte 4, Y11 the table,
// Y13 the byte 3, Y14 zero; Y3-Y7 scratch.

#include "textflag.h"
#include "kernel_ggml_amd64.h"

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
	VPCMPGTB Y13, Y6, Y4 \
	VPAND Y9, Y4, Y4 \
	VPSADBW Y14, Y4, Y4 \
	VPSLLQ $48, Y4, Y4 \
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

DATA q3k64<>+0(SB)/8, $64
GLOBL q3k64<>(SB), RODATA|NOPTR, $8

DATA q3k32<>+0(SB)/8, $32
GLOBL q3k32<>(SB), RODATA|NOPTR, $8

DATA q3k16<>+0(SB)/8, $16
GLOBL q3k16<>(SB), RODATA|NOPTR, $8

DATA q3kMask16<>+0(SB)/8, $0xffff
GLOBL q3kMask16<>(SB), RODATA|NOPTR, $8

DATA q3k32b<>+0(SB)/8, $0x2020202020202020
GLOBL q3k32b<>(SB), RODATA|NOPTR, $8

// Q3SUPER adds sub-blocks 4r to 4r+3 of the super-block (words at DI,
// scales at R9) to Y8 (Σsc·Σq'), Y9 (Σsc²·Σq'²) and Y10 (zero values), and
// ORs into Y7 the lanes with a zero value of the sign opposite d's and into
// Y6 those with one of d's sign (sc = sc − 32; a lane with sc = 0 holds 16
// zeros: q' < 0 ones when fewer than 16 have q' ≥ 0, q' ≥ 0 ones when
// some do), as q3kSuper does.
#define Q3SUPER(r) \
	VMOVDQU (32*r)(DI), Y0 \
	VPMOVZXBQ (4*r)(R9), Y1 \
	VPSUBQ Y12, Y1, Y1 \
	VPAND Y13, Y0, Y2 \
	VPSUBQ Y11, Y2, Y2 \
	VPMULDQ Y1, Y2, Y2 \
	VPADDQ Y2, Y8, Y8 \
	VPSRLQ $32, Y0, Y3 \
	VPAND Y13, Y3, Y3 \
	VPMULDQ Y1, Y1, Y2 \
	VPMULDQ Y2, Y3, Y3 \
	VPADDQ Y3, Y9, Y9 \
	VPSRLQ $16, Y0, Y4 \
	VPAND Y13, Y4, Y4 \
	VPSRLQ $48, Y0, Y5 \
	VPCMPEQQ Y14, Y1, Y0 \
	VPSUBQ Y4, Y15, Y2 \
	VPAND Y0, Y2, Y2 \
	VPADDQ Y4, Y2, Y2 \
	VPADDQ Y2, Y10, Y10 \
	VPCMPEQQ Y14, Y4, Y4 \
	VPCMPGTQ Y1, Y14, Y2 \
	VPANDN Y2, Y4, Y2 \
	VPOR Y2, Y7, Y7 \
	VPCMPGTQ Y14, Y1, Y2 \
	VPANDN Y2, Y4, Y2 \
	VPOR Y2, Y6, Y6 \
	VPCMPEQQ Y15, Y5, Y3 \
	VPANDN Y0, Y3, Y3 \
	VPOR Y3, Y7, Y7 \
	VPCMPEQQ Y14, Y5, Y3 \
	VPANDN Y0, Y3, Y3 \
	VPOR Y3, Y6, Y6

// func ggmlSupersQ3_KAsm(scales, words *uint64, n int, out *q6kSuper)
TEXT ·ggmlSupersQ3_KAsm(SB), NOSPLIT, $0-32
	MOVQ scales+0(FP), R9
	MOVQ words+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ out+24(FP), R8
	TESTQ CX, CX
	JLE q3sdone
	VPBROADCASTQ q3k64<>(SB), Y11
	VPBROADCASTQ q3k32<>(SB), Y12
	VPBROADCASTQ q3kMask16<>(SB), Y13
	VPXOR Y14, Y14, Y14
	VPBROADCASTQ q3k16<>(SB), Y15

q3sloop:
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y7, Y7, Y7
	VPXOR Y6, Y6, Y6
	Q3SUPER(0)
	Q3SUPER(1)
	Q3SUPER(2)
	Q3SUPER(3)
	HSUMQ(Y8, X8, X3, 0(R8))
	HSUMQ(Y9, X9, X3, 8(R8))
	HSUMQ(Y10, X10, X3, 16(R8))
	VMOVMSKPD Y7, AX
	XORL BX, BX
	TESTL AX, AX
	SETNE BL
	MOVQ BX, 24(R8)
	VMOVMSKPD Y6, AX
	XORL BX, BX
	TESTL AX, AX
	SETNE BL
	MOVQ BX, 32(R8)
	// the largest |sc − 32| over the sixteen scale bytes
	VMOVDQU (R9), X0
	VPBROADCASTQ q3k32b<>(SB), X1
	VPSUBB X1, X0, X0
	VPABSB X0, X0
	VPSRLDQ $8, X0, X1
	VPMAXUB X1, X0, X0
	VPSRLDQ $4, X0, X1
	VPMAXUB X1, X0, X0
	VPSRLDQ $2, X0, X1
	VPMAXUB X1, X0, X0
	VPSRLDQ $1, X0, X1
	VPMAXUB X1, X0, X0
	VMOVD X0, AX
	MOVBQZX AX, AX
	MOVQ AX, 40(R8)
	ADDQ $16, R9
	ADDQ $128, DI
	ADDQ $48, R8
	DECQ CX
	JNZ q3sloop
	VZEROUPPER

q3sdone:
	RET
