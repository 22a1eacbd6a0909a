//go:build amd64 && !noasm

// AVX2 quant sums of the integer kernels (see kernel_ggml_sums.go): block by
// block, the packed word the Go twins add up from q8Sums, q4Sums and
// nibbleSums. Byte sums come from VPSADBW against zero (four 64-bit partial
// sums, one per 8 bytes), squares of 4-bit codes from a VPSHUFB table, squares
// of int8 quants from VPMOVSXBW and VPMADDWD, the count of zero values from
// VPCMPEQB, VPMOVMSKB and POPCNT. Every field is placed in its bits of the
// four 64-bit lanes before the lanes are added, as the tables place them;
// no field can carry into the next (the bounds are at the tables).
//
// Registers: SI blocks, CX blocks left, DI words, Y11 the squares of 0-15
// (per 16-byte lane), Y12 the byte 8, Y13 the byte 0x0F, Y14 zero, Y15 the
// byte 0x80; Y0-Y4 scratch.

#include "textflag.h"

DATA ggmlSquares<>+0(SB)/8, $0x3124191009040100
DATA ggmlSquares<>+8(SB)/8, $0xe1c4a99079645140
DATA ggmlSquares<>+16(SB)/8, $0x3124191009040100
DATA ggmlSquares<>+24(SB)/8, $0xe1c4a99079645140
GLOBL ggmlSquares<>(SB), RODATA|NOPTR, $32

DATA ggmlLow4<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL ggmlLow4<>(SB), RODATA|NOPTR, $8

DATA ggmlEight<>+0(SB)/8, $0x0808080808080808
GLOBL ggmlEight<>(SB), RODATA|NOPTR, $8

DATA ggmlSignBit<>+0(SB)/8, $0x8080808080808080
GLOBL ggmlSignBit<>(SB), RODATA|NOPTR, $8

// REDUCE adds the four 64-bit lanes of Y0 into BX (X1 is clobbered).
#define REDUCE \
	VEXTRACTI128 $1, Y0, X1 \
	VPADDQ X1, X0, X0 \
	VPSHUFD $0x4E, X0, X1 \
	VPADDQ X1, X0, X0 \
	VMOVQ X0, BX

// func ggmlSumsQ8_0Asm(p *byte, n int, out *uint64)
TEXT ·ggmlSumsQ8_0Asm(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE q8done
	VPBROADCASTQ ggmlSignBit<>(SB), Y15
	VPXOR Y14, Y14, Y14

q8loop:
	VMOVDQU 2(SI), Y2
	VPXOR Y15, Y2, Y0         // q+128 as unsigned bytes
	VPSADBW Y14, Y0, Y0       // Σ(q+128) per lane: bits 0-15
	VPCMPEQB Y14, Y2, Y2
	VPMOVMSKB Y2, AX
	POPCNTL AX, AX            // zero quants: bits 16-23
	VPMOVSXBW 2(SI), Y3
	VPMOVSXBW 18(SI), Y4
	VPMADDWD Y3, Y3, Y3
	VPMADDWD Y4, Y4, Y4
	VPADDD Y4, Y3, Y3         // Σq² in eight 32-bit lanes
	VPSRLQ $32, Y3, Y4
	VPADDD Y4, Y3, Y3
	VPSLLQ $32, Y3, Y3        // Σq² per lane: bits 32-63
	VPADDQ Y3, Y0, Y0
	REDUCE
	SHLQ $16, AX
	ADDQ AX, BX
	MOVQ BX, (DI)
	ADDQ $34, SI
	ADDQ $8, DI
	DECQ CX
	JNZ q8loop
	VZEROUPPER

q8done:
	RET

// func ggmlSumsQ4_0Asm(p *byte, n int, out *uint64)
TEXT ·ggmlSumsQ4_0Asm(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE q4done
	VMOVDQU ggmlSquares<>(SB), Y11
	VPBROADCASTQ ggmlEight<>(SB), Y12
	VPBROADCASTQ ggmlLow4<>(SB), Y13
	VPXOR Y14, Y14, Y14

q4loop:
	VMOVDQU 2(SI), X2
	VPSRLW $4, X2, X3
	VINSERTI128 $1, X3, Y2, Y2
	VPAND Y13, Y2, Y2         // the 32 codes: low nibbles, then high
	VPSADBW Y14, Y2, Y0       // Σcode per lane: bits 0-15
	VPSHUFB Y2, Y11, Y3
	VPSADBW Y14, Y3, Y3
	VPSLLQ $32, Y3, Y3        // Σcode² per lane: bits 32-63
	VPADDQ Y3, Y0, Y0
	VPCMPEQB Y12, Y2, Y2
	VPMOVMSKB Y2, AX
	POPCNTL AX, AX            // codes 8 (zero values): bits 16-31
	REDUCE
	SHLQ $16, AX
	ADDQ AX, BX
	MOVQ BX, (DI)
	ADDQ $18, SI
	ADDQ $8, DI
	DECQ CX
	JNZ q4loop
	VZEROUPPER

q4done:
	RET

// NIBBLES writes the nibbleSums word of the 32 bytes at off(SI) to
// dst(DI): Σlo, Σhi, Σlo², Σhi² in bits 0, 16, 32, 48.
#define NIBBLES(off, dst) \
	VMOVDQU off(SI), Y0 \
	VPSRLW $4, Y0, Y1 \
	VPAND Y13, Y0, Y0 \
	VPAND Y13, Y1, Y1 \
	VPSHUFB Y0, Y11, Y2 \
	VPSHUFB Y1, Y11, Y3 \
	VPSADBW Y14, Y0, Y0 \
	VPSADBW Y14, Y1, Y1 \
	VPSADBW Y14, Y2, Y2 \
	VPSADBW Y14, Y3, Y3 \
	VPSLLQ $16, Y1, Y1 \
	VPSLLQ $32, Y2, Y2 \
	VPSLLQ $48, Y3, Y3 \
	VPADDQ Y1, Y0, Y0 \
	VPADDQ Y3, Y2, Y2 \
	VPADDQ Y2, Y0, Y0 \
	REDUCE \
	MOVQ BX, dst(DI)

// func ggmlSumsQ4_KAsm(p *byte, n int, out *uint64)
TEXT ·ggmlSumsQ4_KAsm(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE q4kdone
	VMOVDQU ggmlSquares<>(SB), Y11
	VPBROADCASTQ ggmlLow4<>(SB), Y13
	VPXOR Y14, Y14, Y14

q4kloop:
	NIBBLES(16, 0)
	NIBBLES(48, 8)
	NIBBLES(80, 16)
	NIBBLES(112, 24)
	ADDQ $144, SI
	ADDQ $32, DI
	DECQ CX
	JNZ q4kloop
	VZEROUPPER

q4kdone:
	RET

DATA ggmlSix32<>+0(SB)/8, $0x2020202020202020
GLOBL ggmlSix32<>(SB), RODATA|NOPTR, $8

DATA ggmlBits45<>+0(SB)/8, $0x3030303030303030
GLOBL ggmlBits45<>(SB), RODATA|NOPTR, $8

DATA ggmlOnes8<>+0(SB)/8, $0x0101010101010101
GLOBL ggmlOnes8<>(SB), RODATA|NOPTR, $8

DATA ggmlOnes16<>+0(SB)/8, $0x0001000100010001
GLOBL ggmlOnes16<>(SB), RODATA|NOPTR, $8

// Q6WORDS writes the q6Sums words of the two 16-value sub-blocks whose 6-bit
// codes are the bytes of Y6 (one per 128-bit lane) to dst(DI), dst+8(DI):
// Σcode in bits 0-15, the codes 32 (zero values) in bits 16-31, Σcode² in
// bits 32-63, each first per 8 bytes (a 64-bit lane), then the two lanes of
// each half added.
#define Q6WORDS(dst) \
	VPSADBW Y14, Y6, Y3 \
	VPCMPEQB Y10, Y6, Y4 \
	VPAND Y9, Y4, Y4 \
	VPSADBW Y14, Y4, Y4 \
	VPSLLQ $16, Y4, Y4 \
	VPADDQ Y4, Y3, Y3 \
	VPMADDUBSW Y6, Y6, Y4 \
	VPMADDWD Y8, Y4, Y4 \
	VPSRLQ $32, Y4, Y5 \
	VPADDD Y5, Y4, Y4 \
	VPSLLQ $32, Y4, Y4 \
	VPADDQ Y4, Y3, Y3 \
	VPSHUFD $0x4E, Y3, Y4 \
	VPADDQ Y4, Y3, Y3 \
	VPERMQ $0x08, Y3, Y3 \
	VMOVDQU X3, dst(DI)

// Q6HALF writes the words of the eight sub-blocks of one half of a Q6_K
// super-block (its 64 bytes of low nibbles at ql(SI), 32 bytes of high bit
// pairs at qh(SI)) to dst(DI) on: sub-blocks 2k and 2k+1 (k = 0..3) take the
// nibbles at ql+32(k&1), low for k < 2, and the bit pair 2k of qh.
#define Q6HALF(ql, qh, dst) \
	VMOVDQU ql(SI), Y0 \
	VMOVDQU ql+32(SI), Y1 \
	VMOVDQU qh(SI), Y2 \
	VPAND Y13, Y0, Y6 \
	VPSLLW $4, Y2, Y7 \
	VPAND Y12, Y7, Y7 \
	VPOR Y7, Y6, Y6 \
	Q6WORDS(dst) \
	VPAND Y13, Y1, Y6 \
	VPSLLW $2, Y2, Y7 \
	VPAND Y12, Y7, Y7 \
	VPOR Y7, Y6, Y6 \
	Q6WORDS(dst+16) \
	VPSRLW $4, Y0, Y6 \
	VPAND Y13, Y6, Y6 \
	VPAND Y12, Y2, Y7 \
	VPOR Y7, Y6, Y6 \
	Q6WORDS(dst+32) \
	VPSRLW $4, Y1, Y6 \
	VPAND Y13, Y6, Y6 \
	VPSRLW $2, Y2, Y7 \
	VPAND Y12, Y7, Y7 \
	VPOR Y7, Y6, Y6 \
	Q6WORDS(dst+48)

// func ggmlSumsQ6_KAsm(p *byte, n int, out *uint64)
TEXT ·ggmlSumsQ6_KAsm(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE q6kdone
	VPBROADCASTQ ggmlOnes16<>(SB), Y8
	VPBROADCASTQ ggmlOnes8<>(SB), Y9
	VPBROADCASTQ ggmlSix32<>(SB), Y10
	VPBROADCASTQ ggmlBits45<>(SB), Y12
	VPBROADCASTQ ggmlLow4<>(SB), Y13
	VPXOR Y14, Y14, Y14

q6kloop:
	Q6HALF(0, 128, 0)
	Q6HALF(64, 160, 64)
	ADDQ $210, SI
	ADDQ $128, DI
	DECQ CX
	JNZ q6kloop
	VZEROUPPER

q6kdone:
	RET
