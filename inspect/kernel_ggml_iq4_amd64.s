//go:build amd64 && !noasm

// AVX2 index sums of the IQ4_NL and IQ4_XS integer kernels
// (kernel_ggml_iq4.go): for each 16 bytes of 4-bit indices (an IQ4_NL block,
// an IQ4_XS sub-block) the iq4Sums word its Go twin adds up from the table:
// Σ(k + 128) in bits 0-15 (VPSHUFB of the biased table, VPSADBW against
// zero), how many k are negative in bits 16-31 (32 less the POPCNT of
// VPMOVMSKB of the biased entries, whose top bit is set where k > 0), Σk² in
// bits 32-63 (VPSHUFB of |k|, VPMADDUBSW of it with itself: pairs below
// 2·127², no saturation; VPMADDWD by ones, the two dwords of each lane
// added). Every field is placed in its bits of the four 64-bit lanes before
// the lanes are added; none can carry into the next (the bounds are at
// iq4Sums).
//
// The Q4_1 code sums (kernel_ggml_q41.go) likewise: Σc in bits 0-15 and Σc²
// in bits 32-63 of each block's word (VPSADBW of the codes and of their
// squares from a VPSHUFB table).
//
// Registers: SI blocks, CX blocks left, DI words, Y9 the word 1, Y10 the |k|
// table, Y11 the biased table (both per 16-byte lane), Y13 the byte 0x0F,
// Y14 zero; Y0-Y5 scratch.

#include "textflag.h"
#include "kernel_ggml_amd64.h"

DATA iq4Biased<>+0(SB)/8, $0x766a5d4f3f2d1801
DATA iq4Biased<>+8(SB)/8, $0xf1d9c5b5a6998d81
DATA iq4Biased<>+16(SB)/8, $0x766a5d4f3f2d1801
DATA iq4Biased<>+24(SB)/8, $0xf1d9c5b5a6998d81
GLOBL iq4Biased<>(SB), RODATA|NOPTR, $32

DATA iq4Abs<>+0(SB)/8, $0x0a1623314153687f
DATA iq4Abs<>+8(SB)/8, $0x7159453526190d01
DATA iq4Abs<>+16(SB)/8, $0x0a1623314153687f
DATA iq4Abs<>+24(SB)/8, $0x7159453526190d01
GLOBL iq4Abs<>(SB), RODATA|NOPTR, $32

DATA q41Squares<>+0(SB)/8, $0x3124191009040100
DATA q41Squares<>+8(SB)/8, $0xe1c4a99079645140
DATA q41Squares<>+16(SB)/8, $0x3124191009040100
DATA q41Squares<>+24(SB)/8, $0xe1c4a99079645140
GLOBL q41Squares<>(SB), RODATA|NOPTR, $32

DATA iq4Low4<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL iq4Low4<>(SB), RODATA|NOPTR, $8

DATA iq4Ones16<>+0(SB)/8, $0x0001000100010001
GLOBL iq4Ones16<>(SB), RODATA|NOPTR, $8

#define IQ4SETUP \
	VMOVDQU iq4Biased<>(SB), Y11 \
	VMOVDQU iq4Abs<>(SB), Y10 \
	VPBROADCASTQ iq4Low4<>(SB), Y13 \
	VPBROADCASTQ iq4Ones16<>(SB), Y9 \
	VPXOR Y14, Y14, Y14

// IQ4WORD writes the iq4Sums word of the 16 bytes at off(SI) to dst(DI).
#define IQ4WORD(off, dst) \
	VMOVDQU off(SI), X2 \
	VPSRLW $4, X2, X3 \
	VINSERTI128 $1, X3, Y2, Y2 \
	VPAND Y13, Y2, Y2 \
	VPSHUFB Y2, Y11, Y3 \
	VPSADBW Y14, Y3, Y0 \
	VPMOVMSKB Y3, AX \
	VPSHUFB Y2, Y10, Y4 \
	VPMADDUBSW Y4, Y4, Y4 \
	VPMADDWD Y9, Y4, Y4 \
	VPSRLQ $32, Y4, Y5 \
	VPADDD Y5, Y4, Y4 \
	VPSLLQ $32, Y4, Y4 \
	VPADDQ Y4, Y0, Y0 \
	POPCNTL AX, AX \
	REDUCE \
	NEGQ AX \
	ADDQ $32, AX \
	SHLQ $16, AX \
	ADDQ AX, BX \
	MOVQ BX, dst(DI)

// func ggmlSumsIQ4_NLAsm(p *byte, n int, out *uint64)
TEXT ·ggmlSumsIQ4_NLAsm(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE nldone
	IQ4SETUP

nlloop:
	IQ4WORD(2, 0)
	ADDQ $18, SI
	ADDQ $8, DI
	DECQ CX
	JNZ nlloop
	VZEROUPPER

nldone:
	RET

// func ggmlSumsIQ4_XSAsm(p *byte, n int, out *uint64)
TEXT ·ggmlSumsIQ4_XSAsm(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE xsdone
	IQ4SETUP

xsloop:
	IQ4WORD(8, 0)
	IQ4WORD(24, 8)
	IQ4WORD(40, 16)
	IQ4WORD(56, 24)
	IQ4WORD(72, 32)
	IQ4WORD(88, 40)
	IQ4WORD(104, 48)
	IQ4WORD(120, 56)
	ADDQ $136, SI
	ADDQ $64, DI
	DECQ CX
	JNZ xsloop
	VZEROUPPER

xsdone:
	RET

// func ggmlSumsQ4_1Asm(p *byte, n int, out *uint64)
TEXT ·ggmlSumsQ4_1Asm(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE q41done
	VMOVDQU q41Squares<>(SB), Y11
	VPBROADCASTQ iq4Low4<>(SB), Y13
	VPXOR Y14, Y14, Y14

q41loop:
	VMOVDQU 4(SI), X2
	VPSRLW $4, X2, X3
	VINSERTI128 $1, X3, Y2, Y2
	VPAND Y13, Y2, Y2         // the 32 codes: low nibbles, then high
	VPSADBW Y14, Y2, Y0       // Σc per lane: bits 0-15
	VPSHUFB Y2, Y11, Y3
	VPSADBW Y14, Y3, Y3
	VPSLLQ $32, Y3, Y3        // Σc² per lane: bits 32-63
	VPADDQ Y3, Y0, Y0
	HSUMQ(Y0, X0, X1, (DI))
	ADDQ $20, SI
	ADDQ $8, DI
	DECQ CX
	JNZ q41loop
	VZEROUPPER

q41done:
	RET
