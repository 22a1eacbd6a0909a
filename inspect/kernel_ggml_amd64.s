//go:build amd64 && !noasm

// AVX2 quant sums of the integer kernels (see kernel_ggml_sums.go): block by
// block, the packed word the Go twins add up from q4Sums, nibbleSums and
// q6Sums; Q6_K's super-block sums and (AVX-512) extremes; and the Q8_0 fold
// (kernel_ggml_q8.go), which takes q8Sums words four blocks at a time into
// float64 lanes (eight at a time in AVX-512). Byte sums come from VPSADBW
// against zero (four 64-bit partial sums, one per 8 bytes), squares of 4-bit
// codes from a VPSHUFB table, squares of 6-bit codes from VPMADDUBSW, squares
// of int8 quants from VPMOVSXBW and VPMADDWD, the count of zero values from
// VPCMPEQB with VPMOVMSKB and POPCNT, or VPSADBW of the compare's bytes. Every field is placed in its bits of the
// four 64-bit lanes before the lanes are added, as the tables place them;
// no field can carry into the next (the bounds are at the tables).
//
// Registers: SI blocks, CX blocks left, DI words, Y11 the squares of 0-15
// (per 16-byte lane), Y12 the byte 8, Y13 the byte 0x0F, Y14 zero, Y15 the
// byte 0x80; Y0-Y4 scratch.

#include "textflag.h"
#include "kernel_ggml_amd64.h"

DATA ggmlSquares<>+0(SB)/8, $0x3124191009040100
DATA ggmlSquares<>+8(SB)/8, $0xe1c4a99079645140
DATA ggmlSquares<>+16(SB)/8, $0x3124191009040100
DATA ggmlSquares<>+24(SB)/8, $0xe1c4a99079645140
GLOBL ggmlSquares<>(SB), RODATA|NOPTR, $32

DATA ggmlLow4<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL ggmlLow4<>(SB), RODATA|NOPTR, $8

DATA ggmlSignBit<>+0(SB)/8, $0x8080808080808080
GLOBL ggmlSignBit<>(SB), RODATA|NOPTR, $8

// PACK4 writes to dst(DI) the word whose 16-bit fields at bits 0, 16, 32
// and 48 are the sums of the four 64-bit lanes of Y0, Y1, Y2 and Y3 (each
// lane's sum below 2^16): the last step of NIBBLES and Q5GROUP.
#define PACK4(dst) \
	VPSLLQ $16, Y1, Y1 \
	VPSLLQ $32, Y2, Y2 \
	VPSLLQ $48, Y3, Y3 \
	VPADDQ Y1, Y0, Y0 \
	VPADDQ Y3, Y2, Y2 \
	VPADDQ Y2, Y0, Y0 \
	REDUCE \
	MOVQ BX, dst(DI)

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
	PACK4(dst)

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

// The Q4_K nibble sums in AVX-512: a super-block's four 32-byte groups in
// two ZMM registers, NIBBLES' fields for 64 bytes at a time, then the four
// groups' partial words gathered by VSHUFI64X2 and added, the two left per
// group added, and the four words stored together.

// qword 2i of a ZMM to qword i
DATA q4kEven<>+0(SB)/8, $0
DATA q4kEven<>+8(SB)/8, $2
DATA q4kEven<>+16(SB)/8, $4
DATA q4kEven<>+24(SB)/8, $6
DATA q4kEven<>+32(SB)/8, $0
DATA q4kEven<>+40(SB)/8, $2
DATA q4kEven<>+48(SB)/8, $4
DATA q4kEven<>+56(SB)/8, $6
GLOBL q4kEven<>(SB), RODATA|NOPTR, $64

// NIBBLES512 leaves in R the nibbleSums fields of the 64 bytes at off(SI),
// per 8 bytes (Z2, Z3 scratch).
#define NIBBLES512(off, R) \
	VMOVDQU64 off(SI), R \
	VPSRLW $4, R, Z1 \
	VPANDQ Z13, R, R \
	VPANDQ Z13, Z1, Z1 \
	VPSHUFB R, Z11, Z2 \
	VPSHUFB Z1, Z11, Z3 \
	VPSADBW Z14, R, R \
	VPSADBW Z14, Z1, Z1 \
	VPSADBW Z14, Z2, Z2 \
	VPSADBW Z14, Z3, Z3 \
	VPSLLQ $16, Z1, Z1 \
	VPSLLQ $32, Z2, Z2 \
	VPSLLQ $48, Z3, Z3 \
	VPADDQ Z1, R, R \
	VPADDQ Z3, Z2, Z2 \
	VPADDQ Z2, R, R

// func ggmlSumsQ4_KAsm512(p *byte, n int, out *uint64)
TEXT ·ggmlSumsQ4_KAsm512(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE q4kzdone
	VBROADCASTI64X4 ggmlSquares<>(SB), Z11
	VPBROADCASTQ ggmlLow4<>(SB), Z13
	VPXORQ Z14, Z14, Z14
	VMOVDQU64 q4kEven<>(SB), Z12

q4kzloop:
	NIBBLES512(16, Z4)
	NIBBLES512(80, Z5)
	VSHUFI64X2 $0x88, Z5, Z4, Z6
	VSHUFI64X2 $0xDD, Z5, Z4, Z7
	VPADDQ Z7, Z6, Z6
	VPSHUFD $0x4E, Z6, Z7
	VPADDQ Z7, Z6, Z6
	VPERMQ Z6, Z12, Z6
	VMOVDQU Y6, (DI)
	ADDQ $144, SI
	ADDQ $32, DI
	DECQ CX
	JNZ q4kzloop
	VZEROUPPER

q4kzdone:
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

// The Q6_K super-block sums (q6kSuper, kernel_ggml_sums.go): from the
// sixteen q6Sums words and the sixteen int8 scales sc, four sub-blocks per
// register: Σq = c1 − 512 and Σq² = c2 − 64·c1 + 16384 in 64-bit lanes, then
// sc·Σq and sc²·Σq² by VPMULDQ (each below 2^31 in magnitude), added up
// over the four registers and then the lanes.

DATA q6k512<>+0(SB)/8, $512
GLOBL q6k512<>(SB), RODATA|NOPTR, $8

DATA q6k16384<>+0(SB)/8, $16384
GLOBL q6k16384<>(SB), RODATA|NOPTR, $8

// Q6SUPER adds the four sub-blocks r*4 to r*4+3 of the super-block at SI
// (words at DI) to Y8 (Σsc·Σq), Y9 (Σsc²·Σq²) and Y10 (zero values), ORs
// into Y7 the lanes where one has zero values and sc < 0, and ANDs into Y6
// the lanes where none has zero values or sc < 0.
#define Q6SUPER(r) \
	VMOVDQU (32*r)(DI), Y0 \
	VPMOVSXBQ (192+4*r)(SI), Y1 \
	VPAND Y13, Y0, Y2 \
	VPSRLQ $32, Y0, Y3 \
	VPSRLQ $16, Y0, Y4 \
	VPAND Y13, Y4, Y4 \
	VPADDQ Y4, Y10, Y10 \
	VPSLLQ $6, Y2, Y5 \
	VPSUBQ Y5, Y3, Y3 \
	VPADDQ Y11, Y3, Y3 \
	VPSUBQ Y12, Y2, Y2 \
	VPMULDQ Y1, Y2, Y2 \
	VPADDQ Y2, Y8, Y8 \
	VPMULDQ Y1, Y1, Y5 \
	VPMULDQ Y5, Y3, Y3 \
	VPADDQ Y3, Y9, Y9 \
	VPCMPEQQ Y14, Y4, Y4 \
	VPCMPGTQ Y1, Y14, Y5 \
	VPANDN Y5, Y4, Y2 \
	VPOR Y2, Y7, Y7 \
	VPOR Y5, Y4, Y2 \
	VPAND Y2, Y6, Y6

// func ggmlSupersQ6_KAsm(p *byte, words *uint64, n int, out *q6kSuper)
TEXT ·ggmlSupersQ6_KAsm(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ words+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ out+24(FP), R8
	TESTQ CX, CX
	JLE q6sdone
	VPBROADCASTQ q8Mask16<>(SB), Y13
	VPBROADCASTQ q6k512<>(SB), Y12
	VPBROADCASTQ q6k16384<>(SB), Y11
	VPXOR Y14, Y14, Y14

q6sloop:
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y7, Y7, Y7
	VPCMPEQQ Y6, Y6, Y6
	Q6SUPER(0)
	Q6SUPER(1)
	Q6SUPER(2)
	Q6SUPER(3)
	HSUMQ(Y8, X8, X15, 0(R8))
	HSUMQ(Y9, X9, X15, 8(R8))
	HSUMQ(Y10, X10, X15, 16(R8))
	VMOVMSKPD Y7, AX
	XORL BX, BX
	TESTL AX, AX
	SETNE BL
	MOVQ BX, 24(R8)
	VMOVMSKPD Y6, AX
	XORL BX, BX
	CMPL AX, $15
	SETNE BL
	MOVQ BX, 32(R8)
	// the largest |sc|: 255 − it is the least of 255 − |sc|, by VPHMINPOSUW
	VMOVDQU 192(SI), X0
	VPABSB X0, X0
	VPCMPEQB X1, X1, X1
	VPXOR X1, X0, X0
	VPSRLW $8, X0, X1
	VPMINUB X1, X0, X0
	VPAND q8Low8w<>(SB), X0, X0
	VPHMINPOSUW X0, X0
	VMOVD X0, AX
	MOVBQZX AX, AX
	XORQ $255, AX
	MOVQ AX, 40(R8)
	ADDQ $210, SI
	ADDQ $128, DI
	ADDQ $48, R8
	DECQ CX
	JNZ q6sloop
	VZEROUPPER

q6sdone:
	RET

// The extremes of Q6_K super-blocks in AVX-512 (ggmlExtremesQ6_K,
// kernel_ggml_sums.go): a half super-block's 128 codes in two registers
// (ql's 64 bytes, qh's 32 twice, their bit pairs placed by VPSLLVW and
// VPSRLVW), one 16-value sub-block per 128-bit lane; the least and greatest
// code of each sub-block by 64-bit and 32-bit lane shuffles over VPMINUB and
// VPMAXUB, then two shifts within the dword (dword 4i+d is sub-block i+4d);
// sc·(code − 32) of both, and their least and greatest over the super-block.

DATA q6xShl<>+0(SB)/8, $0x0004000400040004
DATA q6xShl<>+8(SB)/8, $0x0004000400040004
DATA q6xShl<>+16(SB)/8, $0x0004000400040004
DATA q6xShl<>+24(SB)/8, $0x0004000400040004
DATA q6xShl<>+32(SB)/8, $0x0002000200020002
DATA q6xShl<>+40(SB)/8, $0x0002000200020002
DATA q6xShl<>+48(SB)/8, $0x0002000200020002
DATA q6xShl<>+56(SB)/8, $0x0002000200020002
GLOBL q6xShl<>(SB), RODATA|NOPTR, $64

DATA q6xShr<>+0(SB)/8, $0
DATA q6xShr<>+8(SB)/8, $0
DATA q6xShr<>+16(SB)/8, $0
DATA q6xShr<>+24(SB)/8, $0
DATA q6xShr<>+32(SB)/8, $0x0002000200020002
DATA q6xShr<>+40(SB)/8, $0x0002000200020002
DATA q6xShr<>+48(SB)/8, $0x0002000200020002
DATA q6xShr<>+56(SB)/8, $0x0002000200020002
GLOBL q6xShr<>(SB), RODATA|NOPTR, $64

// dword 4i+d takes sc of sub-block i+4d
DATA q6xPerm<>+0(SB)/8, $0x0000000400000000
DATA q6xPerm<>+8(SB)/8, $0x0000000c00000008
DATA q6xPerm<>+16(SB)/8, $0x0000000500000001
DATA q6xPerm<>+24(SB)/8, $0x0000000d00000009
DATA q6xPerm<>+32(SB)/8, $0x0000000600000002
DATA q6xPerm<>+40(SB)/8, $0x0000000e0000000a
DATA q6xPerm<>+48(SB)/8, $0x0000000700000003
DATA q6xPerm<>+56(SB)/8, $0x0000000f0000000b
GLOBL q6xPerm<>(SB), RODATA|NOPTR, $64

DATA q6xLow8d<>+0(SB)/4, $0xff
GLOBL q6xLow8d<>(SB), RODATA|NOPTR, $4

DATA q6x32d<>+0(SB)/4, $32
GLOBL q6x32d<>(SB), RODATA|NOPTR, $4

// Q6XHALF leaves in LO and HI the codes of sub-blocks 8h to 8h+3 and 8h+4
// to 8h+7 of the half whose low nibbles are at ql(SI), bit pairs at qh(SI).
#define Q6XHALF(ql, qh, LO, HI) \
	VMOVDQU64 ql(SI), Z0 \
	VBROADCASTI64X4 qh(SI), Z1 \
	VPSLLVW Z29, Z1, Z2 \
	VPANDQ Z30, Z2, Z2 \
	VPANDQ Z31, Z0, Z3 \
	VPORQ Z2, Z3, LO \
	VPSRLW $4, Z0, Z0 \
	VPANDQ Z31, Z0, Z0 \
	VPSRLVW Z28, Z1, Z1 \
	VPANDQ Z30, Z1, Z1 \
	VPORQ Z1, Z0, HI

// func ggmlExtremesQ6_KAsm512(p *byte, n int, out *[2]int32)
TEXT ·ggmlExtremesQ6_KAsm512(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE q6xdone
	VPBROADCASTQ ggmlLow4<>(SB), Z31
	VPBROADCASTQ ggmlBits45<>(SB), Z30
	VMOVDQU64 q6xShl<>(SB), Z29
	VMOVDQU64 q6xShr<>(SB), Z28
	VMOVDQU64 q6xPerm<>(SB), Z27
	VPBROADCASTD q6xLow8d<>(SB), Z26
	VPBROADCASTD q6x32d<>(SB), Z25

q6xloop:
	Q6XHALF(0, 128, Z4, Z5)
	Q6XHALF(64, 160, Z6, Z7)
	// per 128-bit lane i: sub-blocks i and 4+i, then i, 4+i, 8+i, 12+i
	VPUNPCKLQDQ Z5, Z4, Z8
	VPUNPCKHQDQ Z5, Z4, Z9
	VPMINUB Z9, Z8, Z10
	VPMAXUB Z9, Z8, Z11
	VPUNPCKLQDQ Z7, Z6, Z8
	VPUNPCKHQDQ Z7, Z6, Z9
	VPMINUB Z9, Z8, Z12
	VPMAXUB Z9, Z8, Z13
	VPSHUFD $0xD8, Z10, Z10
	VPSHUFD $0xD8, Z12, Z12
	VPUNPCKLQDQ Z12, Z10, Z8
	VPUNPCKHQDQ Z12, Z10, Z9
	VPMINUB Z9, Z8, Z10
	VPSHUFD $0xD8, Z11, Z11
	VPSHUFD $0xD8, Z13, Z13
	VPUNPCKLQDQ Z13, Z11, Z8
	VPUNPCKHQDQ Z13, Z11, Z9
	VPMAXUB Z9, Z8, Z11
	VPSRLD $16, Z10, Z8
	VPMINUB Z8, Z10, Z10
	VPSRLD $8, Z10, Z8
	VPMINUB Z8, Z10, Z10
	VPSRLD $16, Z11, Z8
	VPMAXUB Z8, Z11, Z11
	VPSRLD $8, Z11, Z8
	VPMAXUB Z8, Z11, Z11
	// sc·(code − 32) of the least and the greatest code
	VPANDD Z26, Z10, Z10
	VPANDD Z26, Z11, Z11
	VPSUBD Z25, Z10, Z10
	VPSUBD Z25, Z11, Z11
	VPMOVSXBD 192(SI), Z12
	VPERMD Z12, Z27, Z12
	VPMULLD Z12, Z10, Z10
	VPMULLD Z12, Z11, Z11
	VPMINSD Z11, Z10, Z8
	VPMAXSD Z11, Z10, Z9
	VEXTRACTI64X4 $1, Z8, Y10
	VPMINSD Y10, Y8, Y8
	VEXTRACTI128 $1, Y8, X10
	VPMINSD X10, X8, X8
	VPSHUFD $0x4E, X8, X10
	VPMINSD X10, X8, X8
	VPSHUFD $0xB1, X8, X10
	VPMINSD X10, X8, X8
	VMOVD X8, 0(DI)
	VEXTRACTI64X4 $1, Z9, Y10
	VPMAXSD Y10, Y9, Y9
	VEXTRACTI128 $1, Y9, X10
	VPMAXSD X10, X9, X9
	VPSHUFD $0x4E, X9, X10
	VPMAXSD X10, X9, X9
	VPSHUFD $0xB1, X9, X10
	VPMAXSD X10, X9, X9
	VMOVD X9, 4(DI)
	ADDQ $210, SI
	ADDQ $8, DI
	DECQ CX
	JNZ q6xloop
	VZEROUPPER

q6xdone:
	RET

// The Q6_K code sums in AVX-512: a half super-block's codes in two ZMM
// registers (Q6XHALF), four sub-blocks to a register; Q6WORDS' fields for
// each, the two qwords of each 128-bit lane added, and the four words stored
// together.

// Q6W512 writes the q6Sums words of the four sub-blocks whose codes are the
// 128-bit lanes of R to dst(DI) on (Z8-Z10 scratch).
#define Q6W512(R, dst) \
	VPSADBW Z24, R, Z8 \
	VPCMPEQB Z27, R, K1 \
	VMOVDQU8.Z Z26, K1, Z9 \
	VPSADBW Z24, Z9, Z9 \
	VPSLLQ $16, Z9, Z9 \
	VPADDQ Z9, Z8, Z8 \
	VPMADDUBSW R, R, Z9 \
	VPMADDWD Z25, Z9, Z9 \
	VPSRLQ $32, Z9, Z10 \
	VPADDD Z10, Z9, Z9 \
	VPSLLQ $32, Z9, Z9 \
	VPADDQ Z9, Z8, Z8 \
	VPSHUFD $0x4E, Z8, Z9 \
	VPADDQ Z9, Z8, Z8 \
	VPERMQ Z8, Z23, Z8 \
	VMOVDQU64 Y8, dst(DI)

// func ggmlSumsQ6_KAsm512(p *byte, n int, out *uint64)
TEXT ·ggmlSumsQ6_KAsm512(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE q6wdone
	VPBROADCASTQ ggmlLow4<>(SB), Z31
	VPBROADCASTQ ggmlBits45<>(SB), Z30
	VMOVDQU64 q6xShl<>(SB), Z29
	VMOVDQU64 q6xShr<>(SB), Z28
	VPBROADCASTQ ggmlSix32<>(SB), Z27
	VPBROADCASTQ ggmlOnes8<>(SB), Z26
	VPBROADCASTQ ggmlOnes16<>(SB), Z25
	VPXORQ Z24, Z24, Z24
	VMOVDQU64 q4kEven<>(SB), Z23

q6wloop:
	Q6XHALF(0, 128, Z4, Z5)
	Q6W512(Z4, 0)
	Q6W512(Z5, 32)
	Q6XHALF(64, 160, Z6, Z7)
	Q6W512(Z6, 64)
	Q6W512(Z7, 96)
	ADDQ $210, SI
	ADDQ $128, DI
	DECQ CX
	JNZ q6wloop
	VZEROUPPER

q6wdone:
	RET

// The Q8_0 fold (kernel_ggml_q8.go): four blocks at a time, block k of a
// group into float64 lane k.

DATA q8Mask16<>+0(SB)/8, $0xffff
DATA q8Mask16<>+8(SB)/8, $0xffff
DATA q8Mask16<>+16(SB)/8, $0xffff
DATA q8Mask16<>+24(SB)/8, $0xffff
GLOBL q8Mask16<>(SB), RODATA|NOPTR, $32

DATA q8Mask8<>+0(SB)/8, $0xff
DATA q8Mask8<>+8(SB)/8, $0xff
DATA q8Mask8<>+16(SB)/8, $0xff
DATA q8Mask8<>+24(SB)/8, $0xff
GLOBL q8Mask8<>(SB), RODATA|NOPTR, $32

// 2^52 as a float64: x | 2^52's bits, less 2^52, is x for x < 2^52
DATA q8Magic<>+0(SB)/8, $0x4330000000000000
DATA q8Magic<>+8(SB)/8, $0x4330000000000000
DATA q8Magic<>+16(SB)/8, $0x4330000000000000
DATA q8Magic<>+24(SB)/8, $0x4330000000000000
GLOBL q8Magic<>(SB), RODATA|NOPTR, $32

// 2^52 + 4096: x | 2^52's bits, less this, is x − 4096 (Σq from Σ(q+128))
DATA q8Magic4096<>+0(SB)/8, $0x4330000000001000
DATA q8Magic4096<>+8(SB)/8, $0x4330000000001000
DATA q8Magic4096<>+16(SB)/8, $0x4330000000001000
DATA q8Magic4096<>+24(SB)/8, $0x4330000000001000
GLOBL q8Magic4096<>(SB), RODATA|NOPTR, $32

// −128 and 127 as float64
DATA q8Lo<>+0(SB)/8, $0xc060000000000000
DATA q8Lo<>+8(SB)/8, $0xc060000000000000
DATA q8Lo<>+16(SB)/8, $0xc060000000000000
DATA q8Lo<>+24(SB)/8, $0xc060000000000000
GLOBL q8Lo<>(SB), RODATA|NOPTR, $32

DATA q8Hi<>+0(SB)/8, $0x405fc00000000000
DATA q8Hi<>+8(SB)/8, $0x405fc00000000000
DATA q8Hi<>+16(SB)/8, $0x405fc00000000000
DATA q8Hi<>+24(SB)/8, $0x405fc00000000000
GLOBL q8Hi<>(SB), RODATA|NOPTR, $32

// fp16 exponent and magnitude masks, eight words
DATA q8Exp16<>+0(SB)/8, $0x7c007c007c007c00
DATA q8Exp16<>+8(SB)/8, $0x7c007c007c007c00
GLOBL q8Exp16<>(SB), RODATA|NOPTR, $16

DATA q8Abs16<>+0(SB)/8, $0x7fff7fff7fff7fff
DATA q8Abs16<>+8(SB)/8, $0x7fff7fff7fff7fff
GLOBL q8Abs16<>(SB), RODATA|NOPTR, $16

DATA q8Low8w<>+0(SB)/8, $0x00ff00ff00ff00ff
DATA q8Low8w<>+8(SB)/8, $0x00ff00ff00ff00ff
GLOBL q8Low8w<>(SB), RODATA|NOPTR, $16

// QEXTREMES ORs the least byte of Y2 into R11 and 255 minus its greatest into
// R12, at bit shift (the bytes reduced to 8 words, then by VPHMINPOSUW; Y1 is
// all ones): the extremes test of Q8PART, Q5PART and Q4PART.
#define QEXTREMES(shift) \
	VEXTRACTI128 $1, Y2, X3 \
	VPMINUB X3, X2, X4 \
	VPMAXUB X3, X2, X3 \
	VPXOR X1, X3, X3 \
	VPSRLW $8, X4, X2 \
	VPMINUB X2, X4, X4 \
	VPSRLW $8, X3, X2 \
	VPMINUB X2, X3, X3 \
	VPAND q8Low8w<>(SB), X4, X4 \
	VPAND q8Low8w<>(SB), X3, X3 \
	VPHMINPOSUW X4, X4 \
	VPHMINPOSUW X3, X3 \
	VMOVD X4, AX \
	VMOVD X3, BX \
	MOVWQZX AX, AX \
	MOVWQZX BX, BX \
	SHLQ $shift, AX \
	SHLQ $shift, BX \
	ORQ AX, R11 \
	ORQ BX, R12

// Q8PART leaves in dst four 64-bit partial q8Sums words of the block whose
// quants are at off(SI) (one per 8 quants: Σ(q+128), the zero quants at bit
// 16, Σq² at bit 32), and ORs min(q+128) into R11 and 255 − max(q+128) into
// R12 at bit shift (each reduced to 8 words, then by VPHMINPOSUW). Y1 is all
// ones.
#define Q8PART(off, dst, shift) \
	VMOVDQU off(SI), Y2 \
	VPCMPEQB Y14, Y2, Y3 \
	VPAND Y13, Y3, Y3 \
	VPSADBW Y14, Y3, Y3 \
	VPSLLQ $16, Y3, Y3 \
	VPXOR Y15, Y2, Y2 \
	VPSADBW Y14, Y2, dst \
	VPADDQ Y3, dst, dst \
	QEXTREMES(shift) \
	VPMOVSXBW off(SI), Y3 \
	VPMOVSXBW off+16(SI), Y4 \
	VPMADDWD Y3, Y3, Y3 \
	VPMADDWD Y4, Y4, Y4 \
	VPADDD Y4, Y3, Y3 \
	VPSRLQ $32, Y3, Y4 \
	VPADDD Y4, Y3, Y3 \
	VPSLLQ $32, Y3, Y3 \
	VPADDQ Y3, dst, dst

// The AVX2 folds of Q8_0, Q5_0 and Q4_0 (ggmlFoldQ8_0Asm, ggmlFoldQ5_0Asm,
// ggmlFoldQ4_0Asm) share
// all but their blocks' layout (their PART macros and block offsets):
// QF_LANES_IN loads the lanes and flags, QF_SCALES tests the four blocks'
// fp16 scales at a, b, c, d(SI) (to stop at a non-finite or zero one) and
// widens them to Y9, QF_COMBINE adds the four blocks' partial words (Y5-Y8)
// into one word per block in Y0, QF_ZERO_SIGNS records d's sign where a
// block has zero values (Y3: their counts), QF_EXTREMES folds the extremes
// (R11, R12: the packed least code and 255 − greatest, lo and hi the tables
// that turn them into values) and QF_STORE writes the lanes and flags back.
#define QF_LANES_IN \
	VPXOR Y14, Y14, Y14 \
	VPBROADCASTQ ggmlOnes8<>(SB), Y13 \
	VMOVUPD 0(DI), Y12 \
	VMOVUPD 32(DI), Y11 \
	VMOVDQU 64(DI), Y10 \
	MOVQ 160(DI), R8 \
	MOVQ 168(DI), R9

#define QF_SCALES(a, b, c, d, stop) \
	MOVWQZX a(SI), AX \
	MOVWQZX b(SI), BX \
	SHLQ $16, BX \
	ORQ BX, AX \
	MOVWQZX c(SI), BX \
	SHLQ $32, BX \
	ORQ BX, AX \
	MOVWQZX d(SI), BX \
	SHLQ $48, BX \
	ORQ BX, AX \
	VMOVQ AX, X0 \
	VPAND q8Exp16<>(SB), X0, X1 \
	VPCMPEQW q8Exp16<>(SB), X1, X1 \
	VPAND q8Abs16<>(SB), X0, X2 \
	VPCMPEQW X14, X2, X2 \
	VPOR X2, X1, X1 \
	VPMOVMSKB X1, BX \
	TESTL $0xff, BX \
	JNZ stop \
	VCVTPH2PS X0, X0 \
	VCVTPS2PD X0, Y9

#define QF_COMBINE \
	VPUNPCKLQDQ Y6, Y5, Y0 \
	VPUNPCKHQDQ Y6, Y5, Y1 \
	VPADDQ Y1, Y0, Y5 \
	VPUNPCKLQDQ Y8, Y7, Y0 \
	VPUNPCKHQDQ Y8, Y7, Y1 \
	VPADDQ Y1, Y0, Y7 \
	VPERM2I128 $0x20, Y7, Y5, Y0 \
	VPERM2I128 $0x31, Y7, Y5, Y1 \
	VPADDQ Y1, Y0, Y0

#define QF_ZERO_SIGNS \
	VPCMPEQQ Y14, Y3, Y3 \
	VMOVMSKPD Y3, AX \
	NOTL AX \
	ANDL $15, AX \
	VMOVMSKPD Y9, BX \
	MOVL AX, DX \
	ANDL BX, DX \
	ORQ DX, R8 \
	NOTL BX \
	ANDL BX, AX \
	ORQ AX, R9

#define QF_EXTREMES(lo, hi) \
	VMOVQ R11, X0 \
	VPMOVZXWD X0, X0 \
	VCVTDQ2PD X0, Y0 \
	VADDPD lo<>(SB), Y0, Y0 \
	VMOVQ R12, X1 \
	VPMOVZXWD X1, X1 \
	VCVTDQ2PD X1, Y1 \
	VMOVUPD hi<>(SB), Y2 \
	VSUBPD Y1, Y2, Y1 \
	VMULPD Y9, Y0, Y0 \
	VMULPD Y9, Y1, Y1 \
	VMINPD Y1, Y0, Y2 \
	VMAXPD Y1, Y0, Y3 \
	VMINPD 96(DI), Y2, Y2 \
	VMAXPD 128(DI), Y3, Y3 \
	VMOVUPD Y2, 96(DI) \
	VMOVUPD Y3, 128(DI)

// QF_SUMS adds to the lanes, from the blocks' words in Y0 (Σc in bits 0-15,
// the zero codes at bit 16, Σc² at bit 32) for codes c whose value is
// (c − h)·d with 32·h = 2^shift·… (h = 2^(shift−1)): d·(Σc − 32·h) to the
// sums (magic: 2^52 + 32·h), d²·(Σc² − 2h·Σc + 32·h²) to the sums of squares
// (sq: 32·h²) and the zero codes to the counts (the Q5_0 and Q4_0 folds).
#define QF_SUMS(shift, magic, sq) \
	VPAND q8Mask16<>(SB), Y0, Y1 \
	VPSLLQ $shift, Y1, Y4 \
	VPOR q8Magic<>(SB), Y1, Y1 \
	VSUBPD magic<>(SB), Y1, Y1 \
	VMULPD Y9, Y1, Y1 \
	VADDPD Y1, Y12, Y12 \
	VPSRLQ $32, Y0, Y2 \
	VPSUBQ Y4, Y2, Y2 \
	VPADDQ sq<>(SB), Y2, Y2 \
	VPOR q8Magic<>(SB), Y2, Y2 \
	VSUBPD q8Magic<>(SB), Y2, Y2 \
	VMULPD Y9, Y9, Y3 \
	VMULPD Y2, Y3, Y3 \
	VADDPD Y3, Y11, Y11 \
	VPSRLQ $16, Y0, Y3 \
	VPAND q8Mask8<>(SB), Y3, Y3 \
	VPADDQ Y3, Y10, Y10

// QF_GROUP folds a group of four blocks of a 5-bit or 4-bit type (part:
// Q5PART or Q4PART; b1, b2, b3 the offsets of blocks 1–3) into the lanes,
// or jumps to stop when a scale is non-finite or zero: the scales, the
// blocks' words, QF_SUMS(shift, magic, sq), the zeros' signs and the
// extremes (lo, hi as QF_EXTREMES takes them).
#define QF_GROUP(part, b1, b2, b3, stop, shift, magic, sq, lo, hi) \
	QF_SCALES(0, b1, b2, b3, stop) \
	VPCMPEQB Y1, Y1, Y1 \
	XORQ R11, R11 \
	XORQ R12, R12 \
	part(0, Y5, 0) \
	part(b1, Y6, 16) \
	part(b2, Y7, 32) \
	part(b3, Y8, 48) \
	QF_COMBINE \
	QF_SUMS(shift, magic, sq) \
	QF_ZERO_SIGNS \
	QF_EXTREMES(lo, hi)

#define QF_STORE \
	VMOVUPD Y12, 0(DI) \
	VMOVUPD Y11, 32(DI) \
	VMOVDQU Y10, 64(DI) \
	XORL AX, AX \
	TESTQ R8, R8 \
	SETNE AL \
	MOVQ AX, 160(DI) \
	XORL BX, BX \
	TESTQ R9, R9 \
	SETNE BL \
	MOVQ BX, 168(DI) \
	VZEROUPPER

// func ggmlFoldQ8_0Asm(p *byte, n int, l *q8Lanes) int
//
// Registers: SI the group, CX groups left, DI l, R10 groups done, R8 and R9
// the −0 and +0 flags, R11 and R12 the group's packed extreme quants; Y12,
// Y11, Y10 the lanes' sums, sums of squares and zero counts (the extremes
// stay in l); Y15 the byte 0x80, Y14 zero, Y13 the byte 1; Y9 d, Y1 all ones.
TEXT ·ggmlFoldQ8_0Asm(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ l+16(FP), DI
	XORQ R10, R10
	TESTQ CX, CX
	JLE q8fret
	VPBROADCASTQ ggmlSignBit<>(SB), Y15
	QF_LANES_IN

q8floop:
	// the four scales: stop at a non-finite or zero one
	QF_SCALES(0, 34, 68, 102, q8fstop)
	// the four blocks' words, one per lane
	VPCMPEQB Y1, Y1, Y1
	XORQ R11, R11
	XORQ R12, R12
	Q8PART(2, Y5, 0)
	Q8PART(36, Y6, 16)
	Q8PART(70, Y7, 32)
	Q8PART(104, Y8, 48)
	QF_COMBINE
	// sum += d·(Σ(q+128) − 4096), sq += d·d·Σq², zeros += the zero quants
	VPAND q8Mask16<>(SB), Y0, Y1
	VPOR q8Magic<>(SB), Y1, Y1
	VSUBPD q8Magic4096<>(SB), Y1, Y1
	VMULPD Y9, Y1, Y1
	VADDPD Y1, Y12, Y12
	VPSRLQ $32, Y0, Y2
	VPOR q8Magic<>(SB), Y2, Y2
	VSUBPD q8Magic<>(SB), Y2, Y2
	VMULPD Y9, Y9, Y3
	VMULPD Y2, Y3, Y3
	VADDPD Y3, Y11, Y11
	VPSRLQ $16, Y0, Y3
	VPAND q8Mask8<>(SB), Y3, Y3
	VPADDQ Y3, Y10, Y10
	// the zeros' signs: d's, in the lanes with zero quants
	QF_ZERO_SIGNS
	// the extremes: qmin·d and qmax·d, the lesser to lo, the greater to hi
	QF_EXTREMES(q8Lo, q8Hi)
	ADDQ $136, SI
	INCQ R10
	DECQ CX
	JNZ q8floop

q8fstop:
	QF_STORE

q8fret:
	MOVQ R10, ret+24(FP)
	RET

// The Q8_0 fold in AVX-512 (kernel_ggml_q8.go): eight blocks (two groups) at
// a time, block 8g+k and then block 8g+4+k into float64 lane k, as two
// passes of ggmlFoldQ8_0Asm would add them. The quants of two blocks share a
// ZMM register (blocks 0|2, 4|6, 1|3, 5|7, so that the reductions below
// leave block k in qword k). Per 8 quants (a qword) one packed word: Σ(q+128)
// by VPSADBW at bit 0, the zero quants at bit 16 (VPTESTNMB, a masked 1,
// VPSADBW), and Σ(q+128)·q at bit 32 (signed, by two VPDPBUSD: the high
// half's four products, then the low half's shifted into the high dword;
// no field carries into the next). Two rounds of 128-bit and 64-bit lane
// shuffles and adds leave each block's word, from which Σq = Σ(q+128) −
// 4096 and Σq² = Σ(q+128)·q − 128·Σ(q+128) + 32·128²; the least and greatest
// q+128 of each block come from the same shuffles over VPMINUB and VPMAXUB,
// then three shifts within the qword.

DATA q8HiDwords<>+0(SB)/8, $0xffffffff00000000
GLOBL q8HiDwords<>(SB), RODATA|NOPTR, $8

// 2^52 + 128: x | 2^52's bits, less this, is x − 128 (q from q+128)
DATA q8Magic128<>+0(SB)/8, $0x4330000000000080
GLOBL q8Magic128<>(SB), RODATA|NOPTR, $8

// 32·128² = 524288: Σq² = Σ(q+128)·q − 128·Σ(q+128) + this
DATA q8SqBias<>+0(SB)/8, $524288
GLOBL q8SqBias<>(SB), RODATA|NOPTR, $8

// Q8WORDS leaves in S the packed words (one per 8 quants) of the two blocks
// whose quants are Q, and in U their quants plus 128. Z14 and Z15 are
// scratch.
#define Q8WORDS(Q, U, S) \
	VPXORQ Z31, Q, U \
	VPSADBW Z30, U, S \
	VPTESTNMB Q, Q, K1 \
	VMOVDQU8.Z Z29, K1, Z14 \
	VPSADBW Z30, Z14, Z14 \
	VPSLLQ $16, Z14, Z14 \
	VPADDQ Z14, S, S \
	VPANDQ Z28, Q, Z14 \
	VPDPBUSD Z14, U, S \
	VPSLLQ $32, U, Z15 \
	VPSLLQ $32, Q, Z14 \
	VPDPBUSD Z14, Z15, S

// BYTEREDUCE leaves in byte 0 of each qword of R the OP (VPMINUB or
// VPMAXUB) of its eight bytes (Z14 scratch).
#define BYTEREDUCE(OP, R) \
	VPSRLQ $32, R, Z14 \
	OP Z14, R, R \
	VPSRLQ $16, R, Z14 \
	OP Z14, R, R \
	VPSRLQ $8, R, Z14 \
	OP Z14, R, R

// func ggmlFoldQ8_0Asm512(p *byte, n int, l *q8Lanes) int
//
// Folds n pairs of groups (272 bytes each) at p, stopping at the first pair
// with a zero or non-finite scale; returns the groups folded (twice the
// pairs).
//
// Registers: SI the pair, CX pairs left, DI l, R10 groups done; Z8 the eight
// d; Y21, Y20 the lanes' sums and sums of squares, Z19 the zero counts of
// lanes k and k+4 (added at the end), Y18, Y17 the lanes' extremes, K4 and
// K5 the blocks where a −0 or a +0 occurred; constants in Z22-Z31.
TEXT ·ggmlFoldQ8_0Asm512(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ l+16(FP), DI
	XORQ R10, R10
	TESTQ CX, CX
	JLE q8zret
	VPBROADCASTQ ggmlSignBit<>(SB), Z31
	VPXORQ Z30, Z30, Z30
	VPBROADCASTQ ggmlOnes8<>(SB), Z29
	VPBROADCASTQ q8HiDwords<>(SB), Z28
	VPBROADCASTQ q8Mask16<>(SB), Z27
	VPBROADCASTQ q8Mask8<>(SB), Z26
	VPBROADCASTQ q8Magic<>(SB), Z25
	VPBROADCASTQ q8Magic4096<>(SB), Z24
	VPBROADCASTQ q8Magic128<>(SB), Z23
	VPBROADCASTQ q8SqBias<>(SB), Z22
	VMOVUPD 0(DI), Y21
	VMOVUPD 32(DI), Y20
	VPXORQ Z19, Z19, Z19
	VMOVUPD 96(DI), Y18
	VMOVUPD 128(DI), Y17
	KXORB K4, K4, K4
	KXORB K5, K5, K5

q8zloop:
	// the eight scales: stop at a non-finite or zero one
	MOVWQZX 0(SI), AX
	MOVWQZX 34(SI), BX
	SHLQ $16, BX
	ORQ BX, AX
	MOVWQZX 68(SI), BX
	SHLQ $32, BX
	ORQ BX, AX
	MOVWQZX 102(SI), BX
	SHLQ $48, BX
	ORQ BX, AX
	MOVWQZX 136(SI), DX
	MOVWQZX 170(SI), BX
	SHLQ $16, BX
	ORQ BX, DX
	MOVWQZX 204(SI), BX
	SHLQ $32, BX
	ORQ BX, DX
	MOVWQZX 238(SI), BX
	SHLQ $48, BX
	ORQ BX, DX
	VMOVQ AX, X0
	VPINSRQ $1, DX, X0, X0
	VPAND q8Exp16<>(SB), X0, X1
	VPCMPEQW q8Exp16<>(SB), X1, X1
	VPAND q8Abs16<>(SB), X0, X2
	VPXOR X3, X3, X3
	VPCMPEQW X3, X2, X2
	VPOR X2, X1, X1
	VPMOVMSKB X1, BX
	TESTL BX, BX
	JNZ q8zstop
	VCVTPH2PS X0, Y0
	VCVTPS2PD Y0, Z8

	// the packed words, two blocks per register
	VMOVDQU 2(SI), Y10
	VINSERTI64X4 $1, 70(SI), Z10, Z10
	VMOVDQU 138(SI), Y11
	VINSERTI64X4 $1, 206(SI), Z11, Z11
	VMOVDQU 36(SI), Y12
	VINSERTI64X4 $1, 104(SI), Z12, Z12
	VMOVDQU 172(SI), Y13
	VINSERTI64X4 $1, 240(SI), Z13, Z13
	Q8WORDS(Z10, Z0, Z4)
	Q8WORDS(Z11, Z1, Z5)
	Q8WORDS(Z12, Z2, Z6)
	Q8WORDS(Z13, Z3, Z7)
	// each block's word: blocks 0, 2, 4, 6 and 1, 3, 5, 7, then 0-7
	VSHUFI64X2 $0x88, Z5, Z4, Z14
	VSHUFI64X2 $0xDD, Z5, Z4, Z15
	VPADDQ Z15, Z14, Z4
	VSHUFI64X2 $0x88, Z7, Z6, Z14
	VSHUFI64X2 $0xDD, Z7, Z6, Z15
	VPADDQ Z15, Z14, Z6
	VPUNPCKLQDQ Z6, Z4, Z14
	VPUNPCKHQDQ Z6, Z4, Z15
	VPADDQ Z15, Z14, Z4

	// sum += d·(Σ(q+128) − 4096), lanes k then k+4
	VPANDQ Z27, Z4, Z5
	VPORQ Z25, Z5, Z15
	VSUBPD Z24, Z15, Z15
	VMULPD Z8, Z15, Z15
	VADDPD Y15, Y21, Y21
	VEXTRACTF64X4 $1, Z15, Y15
	VADDPD Y15, Y21, Y21
	// sq += d·d·(Σ(q+128)·q − 128·Σ(q+128) + 524288)
	VPSRAQ $32, Z4, Z6
	VPSLLQ $7, Z5, Z5
	VPSUBQ Z5, Z6, Z6
	VPADDQ Z22, Z6, Z6
	VPORQ Z25, Z6, Z6
	VSUBPD Z25, Z6, Z6
	VMULPD Z8, Z8, Z15
	VMULPD Z6, Z15, Z15
	VADDPD Y15, Y20, Y20
	VEXTRACTF64X4 $1, Z15, Y15
	VADDPD Y15, Y20, Y20
	// zeros += the zero quants; their signs: d's, in the blocks with some
	VPSRLQ $16, Z4, Z6
	VPANDQ Z26, Z6, Z6
	VPADDQ Z6, Z19, Z19
	VPTESTMQ Z6, Z6, K1
	VPMOVQ2M Z8, K2
	KANDB K2, K1, K3
	KORB K3, K4, K4
	KANDNB K1, K2, K3
	KORB K3, K5, K5

	// the extremes: each block's least and greatest q+128
	VSHUFI64X2 $0x88, Z1, Z0, Z14
	VSHUFI64X2 $0xDD, Z1, Z0, Z15
	VPMINUB Z15, Z14, Z0
	VPMAXUB Z15, Z14, Z1
	VSHUFI64X2 $0x88, Z3, Z2, Z14
	VSHUFI64X2 $0xDD, Z3, Z2, Z15
	VPMINUB Z15, Z14, Z2
	VPMAXUB Z15, Z14, Z3
	VPUNPCKLQDQ Z2, Z0, Z14
	VPUNPCKHQDQ Z2, Z0, Z15
	VPMINUB Z15, Z14, Z0
	VPUNPCKLQDQ Z3, Z1, Z14
	VPUNPCKHQDQ Z3, Z1, Z15
	VPMAXUB Z15, Z14, Z1
	BYTEREDUCE(VPMINUB, Z0)
	BYTEREDUCE(VPMAXUB, Z1)
	// qmin·d and qmax·d, the lesser to lo, the greater to hi, lanes k then k+4
	VPANDQ Z26, Z0, Z0
	VPORQ Z25, Z0, Z0
	VSUBPD Z23, Z0, Z0
	VPANDQ Z26, Z1, Z1
	VPORQ Z25, Z1, Z1
	VSUBPD Z23, Z1, Z1
	VMULPD Z8, Z0, Z0
	VMULPD Z8, Z1, Z1
	VMINPD Z1, Z0, Z2
	VMAXPD Z1, Z0, Z3
	VMINPD Y18, Y2, Y18
	VMAXPD Y17, Y3, Y17
	VEXTRACTF64X4 $1, Z2, Y2
	VEXTRACTF64X4 $1, Z3, Y3
	VMINPD Y18, Y2, Y18
	VMAXPD Y17, Y3, Y17
	ADDQ $272, SI
	ADDQ $2, R10
	DECQ CX
	JNZ q8zloop

q8zstop:
	VMOVUPD Y21, 0(DI)
	VMOVUPD Y20, 32(DI)
	VEXTRACTI64X4 $1, Z19, Y14
	VPADDQ Y14, Y19, Y19
	VMOVDQU 64(DI), Y14
	VPADDQ Y14, Y19, Y19
	VMOVDQU64 Y19, 64(DI)
	VMOVUPD Y18, 96(DI)
	VMOVUPD Y17, 128(DI)
	KMOVB K4, AX
	ORQ 160(DI), AX
	XORL BX, BX
	TESTQ AX, AX
	SETNE BL
	MOVQ BX, 160(DI)
	KMOVB K5, AX
	ORQ 168(DI), AX
	XORL BX, BX
	TESTQ AX, AX
	SETNE BL
	MOVQ BX, 168(DI)
	VZEROUPPER

q8zret:
	MOVQ R10, ret+24(FP)
	RET

// q5Spread spreads byte i/8 of a broadcast qh over bytes i (VPSHUFB): the
// Q5_0 fold tests bit i%8 of each against 1 << i%8.
DATA q5Spread<>+0(SB)/8, $0x0000000000000000
DATA q5Spread<>+8(SB)/8, $0x0101010101010101
DATA q5Spread<>+16(SB)/8, $0x0202020202020202
DATA q5Spread<>+24(SB)/8, $0x0303030303030303
GLOBL q5Spread<>(SB), RODATA|NOPTR, $32

// The Q5_0 fold (kernel_ggml_q8.go): as the Q8_0 fold, over 5-bit codes c
// (the value is (c−16)·d) built as ggmlSumsQ5_0Asm builds them.

DATA q5Low4_32<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q5Low4_32<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q5Low4_32<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q5Low4_32<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL q5Low4_32<>(SB), RODATA|NOPTR, $32

DATA q5Bits32<>+0(SB)/8, $0x8040201008040201
DATA q5Bits32<>+8(SB)/8, $0x8040201008040201
DATA q5Bits32<>+16(SB)/8, $0x8040201008040201
DATA q5Bits32<>+24(SB)/8, $0x8040201008040201
GLOBL q5Bits32<>(SB), RODATA|NOPTR, $32

DATA q5Sixteen32<>+0(SB)/8, $0x1010101010101010
DATA q5Sixteen32<>+8(SB)/8, $0x1010101010101010
DATA q5Sixteen32<>+16(SB)/8, $0x1010101010101010
DATA q5Sixteen32<>+24(SB)/8, $0x1010101010101010
GLOBL q5Sixteen32<>(SB), RODATA|NOPTR, $32

DATA q5Ones16_32<>+0(SB)/8, $0x0001000100010001
DATA q5Ones16_32<>+8(SB)/8, $0x0001000100010001
DATA q5Ones16_32<>+16(SB)/8, $0x0001000100010001
DATA q5Ones16_32<>+24(SB)/8, $0x0001000100010001
GLOBL q5Ones16_32<>(SB), RODATA|NOPTR, $32

// 2^52 + 512: x | 2^52's bits, less this, is x − 512 (Σ(c−16) from Σc)
DATA q5Magic512<>+0(SB)/8, $0x4330000000000200
DATA q5Magic512<>+8(SB)/8, $0x4330000000000200
DATA q5Magic512<>+16(SB)/8, $0x4330000000000200
DATA q5Magic512<>+24(SB)/8, $0x4330000000000200
GLOBL q5Magic512<>(SB), RODATA|NOPTR, $32

// 8192 = 32·16², as 64-bit integers
DATA q5Sq8192<>+0(SB)/8, $8192
DATA q5Sq8192<>+8(SB)/8, $8192
DATA q5Sq8192<>+16(SB)/8, $8192
DATA q5Sq8192<>+24(SB)/8, $8192
GLOBL q5Sq8192<>(SB), RODATA|NOPTR, $32

// −16 and 239 as float64
DATA q5Lo<>+0(SB)/8, $0xc030000000000000
DATA q5Lo<>+8(SB)/8, $0xc030000000000000
DATA q5Lo<>+16(SB)/8, $0xc030000000000000
DATA q5Lo<>+24(SB)/8, $0xc030000000000000
GLOBL q5Lo<>(SB), RODATA|NOPTR, $32

DATA q5Hi<>+0(SB)/8, $0x406de00000000000
DATA q5Hi<>+8(SB)/8, $0x406de00000000000
DATA q5Hi<>+16(SB)/8, $0x406de00000000000
DATA q5Hi<>+24(SB)/8, $0x406de00000000000
GLOBL q5Hi<>(SB), RODATA|NOPTR, $32

// Q5PART leaves in dst four 64-bit partial q5Sums words of the Q5_0 block at
// off(SI) (one per 8 codes: Σc, the codes 16 at bit 16, Σc² at bit 32), and
// ORs min(c) into R11 and 255 − max(c) into R12 at bit shift. Y1 is all
// ones, Y15 the qh spread.
#define Q5PART(off, dst, shift) \
	VMOVDQU off+6(SI), X2 \
	VPSRLW $4, X2, X3 \
	VINSERTI128 $1, X3, Y2, Y2 \
	VPAND q5Low4_32<>(SB), Y2, Y2 \
	VPBROADCASTD off+2(SI), Y3 \
	VPSHUFB Y15, Y3, Y3 \
	VPAND q5Bits32<>(SB), Y3, Y3 \
	VPCMPEQB q5Bits32<>(SB), Y3, Y3 \
	VPAND q5Sixteen32<>(SB), Y3, Y3 \
	VPOR Y3, Y2, Y2 \
	VPSADBW Y14, Y2, dst \
	VPCMPEQB q5Sixteen32<>(SB), Y2, Y3 \
	VPAND Y13, Y3, Y3 \
	VPSADBW Y14, Y3, Y3 \
	VPSLLQ $16, Y3, Y3 \
	VPADDQ Y3, dst, dst \
	VPMADDUBSW Y2, Y2, Y3 \
	VPMADDWD q5Ones16_32<>(SB), Y3, Y3 \
	VPSRLQ $32, Y3, Y4 \
	VPADDD Y4, Y3, Y3 \
	VPSLLQ $32, Y3, Y3 \
	VPADDQ Y3, dst, dst \
	QEXTREMES(shift)

// func ggmlFoldQ5_0Asm(p *byte, n int, l *q8Lanes) int
//
// Registers as ggmlFoldQ8_0Asm's, but Y15 the qh spread.
TEXT ·ggmlFoldQ5_0Asm(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ l+16(FP), DI
	XORQ R10, R10
	TESTQ CX, CX
	JLE q5fret
	VMOVDQU q5Spread<>(SB), Y15
	QF_LANES_IN

q5floop:
	// sum += d·(Σc − 512), sq += d·d·(Σc² − 32·Σc + 8192), zeros += the
	// codes 16; extremes (cmin−16)·d and (cmax−16)·d
	QF_GROUP(Q5PART, 22, 44, 66, q5fstop, 5, q5Magic512, q5Sq8192, q5Lo, q5Hi)
	ADDQ $88, SI
	INCQ R10
	DECQ CX
	JNZ q5floop

q5fstop:
	QF_STORE

q5fret:
	MOVQ R10, ret+24(FP)
	RET

// 2^52 + 256: x | 2^52's bits, less this, is x − 256 (Σ(c−8) from Σc)
DATA q4Magic256<>+0(SB)/8, $0x4330000000000100
DATA q4Magic256<>+8(SB)/8, $0x4330000000000100
DATA q4Magic256<>+16(SB)/8, $0x4330000000000100
DATA q4Magic256<>+24(SB)/8, $0x4330000000000100
GLOBL q4Magic256<>(SB), RODATA|NOPTR, $32

// 2048 = 32·8², as 64-bit integers
DATA q4Sq2048<>+0(SB)/8, $2048
DATA q4Sq2048<>+8(SB)/8, $2048
DATA q4Sq2048<>+16(SB)/8, $2048
DATA q4Sq2048<>+24(SB)/8, $2048
GLOBL q4Sq2048<>(SB), RODATA|NOPTR, $32

DATA q4Eight32<>+0(SB)/8, $0x0808080808080808
DATA q4Eight32<>+8(SB)/8, $0x0808080808080808
DATA q4Eight32<>+16(SB)/8, $0x0808080808080808
DATA q4Eight32<>+24(SB)/8, $0x0808080808080808
GLOBL q4Eight32<>(SB), RODATA|NOPTR, $32

// −8 and 247 as float64
DATA q4Lo<>+0(SB)/8, $0xc020000000000000
DATA q4Lo<>+8(SB)/8, $0xc020000000000000
DATA q4Lo<>+16(SB)/8, $0xc020000000000000
DATA q4Lo<>+24(SB)/8, $0xc020000000000000
GLOBL q4Lo<>(SB), RODATA|NOPTR, $32

DATA q4Hi<>+0(SB)/8, $0x406ee00000000000
DATA q4Hi<>+8(SB)/8, $0x406ee00000000000
DATA q4Hi<>+16(SB)/8, $0x406ee00000000000
DATA q4Hi<>+24(SB)/8, $0x406ee00000000000
GLOBL q4Hi<>(SB), RODATA|NOPTR, $32

// Q4PART leaves in dst four 64-bit partial q4Sums words of the Q4_0 block at
// off(SI) (one per 8 codes: Σc, the codes 8 at bit 16, Σc² at bit 32), and
// ORs min(c) into R11 and 255 − max(c) into R12 at bit shift. Y1 is all
// ones.
#define Q4PART(off, dst, shift) \
	VMOVDQU off+2(SI), X2 \
	VPSRLW $4, X2, X3 \
	VINSERTI128 $1, X3, Y2, Y2 \
	VPAND q5Low4_32<>(SB), Y2, Y2 \
	VPSADBW Y14, Y2, dst \
	VPCMPEQB q4Eight32<>(SB), Y2, Y3 \
	VPAND Y13, Y3, Y3 \
	VPSADBW Y14, Y3, Y3 \
	VPSLLQ $16, Y3, Y3 \
	VPADDQ Y3, dst, dst \
	VPMADDUBSW Y2, Y2, Y3 \
	VPMADDWD q5Ones16_32<>(SB), Y3, Y3 \
	VPSRLQ $32, Y3, Y4 \
	VPADDD Y4, Y3, Y3 \
	VPSLLQ $32, Y3, Y3 \
	VPADDQ Y3, dst, dst \
	QEXTREMES(shift)

// func ggmlFoldQ4_0Asm(p *byte, n int, l *q8Lanes) int
//
// Registers as ggmlFoldQ8_0Asm's (Y15 unused).
TEXT ·ggmlFoldQ4_0Asm(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ l+16(FP), DI
	XORQ R10, R10
	TESTQ CX, CX
	JLE q4fret
	QF_LANES_IN

q4floop:
	// sum += d·(Σc − 256), sq += d·d·(Σc² − 16·Σc + 2048), zeros += the
	// codes 8; extremes (cmin−8)·d and (cmax−8)·d
	QF_GROUP(Q4PART, 18, 36, 54, q4fstop, 4, q4Magic256, q4Sq2048, q4Lo, q4Hi)
	ADDQ $72, SI
	INCQ R10
	DECQ CX
	JNZ q4floop

q4fstop:
	QF_STORE

q4fret:
	MOVQ R10, ret+24(FP)
	RET

// q4kPerm gathers a Q4_K super-block's four nibbleSums words into its eight
// s1 fields (low half) and eight s2 fields (high half), sub-block order.
DATA q4kPerm<>+0(SB)/8, $0x0000000200000000
DATA q4kPerm<>+8(SB)/8, $0x0000000600000004
DATA q4kPerm<>+16(SB)/8, $0x0000000300000001
DATA q4kPerm<>+24(SB)/8, $0x0000000700000005
GLOBL q4kPerm<>(SB), RODATA|NOPTR, $32

// func q4kCoreAsm(t *uint64, scw, mw uint64, mdu, mmu int64, fl, fh, qmax float64, out *q4kCore) (zero bool)
//
// Sub-block j (sc, m byte j of scw, mw; s1, s2 its fields of t) has
// A = mdu·sc and B = mmu·m in units (mdu, mmu within int32). The integer
// sums go to out.s (32-bit lanes: every term is below 2^27 for the 5-bit
// codes of Q5_K, qmax 31; 2^25 for Q4_K's nibbles, qmax 15) and out.sm; the
// range of −B and qmax·A − B, exact in float64 (below 2^43), to out.lo and
// out.hi, and to out.ext the sub-blocks (bit j) whose own range reaches below
// fl or above fh. zero says some sub-block has B = 0 or B = A·r for an integer r
// (B/A is exact then), the sub-blocks whose zero values q4kFast counts.
TEXT ·q4kCoreAsm(SB), NOSPLIT, $0-73
	MOVQ t+0(FP), SI
	MOVQ out+64(FP), DI
	VMOVQ scw+8(FP), X0
	VPMOVZXBD X0, Y0 // sc
	VMOVQ mw+16(FP), X1
	VPXOR X15, X15, X15
	VPSADBW X15, X1, X2
	VMOVQ X2, 16(DI) // Σm
	VPMOVZXBD X1, Y1 // m
	VMOVDQU (SI), Y2
	VMOVDQU q4kPerm<>(SB), Y3
	VPERMD Y2, Y3, Y2
	VPMOVZXWD X2, Y4 // s1
	VEXTRACTI128 $1, Y2, X5
	VPMOVZXWD X5, Y5 // s2
	VPMULLD Y0, Y4, Y6 // sc·s1
	VPMULLD Y1, Y6, Y7 // sc·m·s1
	VPMULLD Y0, Y0, Y8
	VPMULLD Y5, Y8, Y8 // sc²·s2
	VPMULLD Y1, Y1, Y9 // m²
	VPHADDD Y7, Y6, Y10
	VPHADDD Y9, Y8, Y11
	VPHADDD Y11, Y10, Y12
	VEXTRACTI128 $1, Y12, X13
	VPADDD X13, X12, X12
	VMOVDQU X12, 0(DI)

	// A and B in float64, sub-blocks 0–3 and 4–7
	VCVTDQ2PD X0, Y10
	VEXTRACTI128 $1, Y0, X11
	VCVTDQ2PD X11, Y11
	VCVTDQ2PD X1, Y12
	VEXTRACTI128 $1, Y1, X13
	VCVTDQ2PD X13, Y13
	MOVQ mdu+24(FP), AX
	VMOVD AX, X14
	VPBROADCASTD X14, X14
	VCVTDQ2PD X14, Y14
	MOVQ mmu+32(FP), AX
	VMOVD AX, X9
	VPBROADCASTD X9, X9
	VCVTDQ2PD X9, Y9
	VMULPD Y14, Y10, Y10 // A
	VMULPD Y14, Y11, Y11
	VMULPD Y9, Y12, Y12 // B
	VMULPD Y9, Y13, Y13

	// the range: −B and qmax·A − B
	VBROADCASTSD qmax+56(FP), Y8
	VMULPD Y8, Y10, Y0
	VSUBPD Y12, Y0, Y0
	VMULPD Y8, Y11, Y1
	VSUBPD Y13, Y1, Y1
	VXORPD Y15, Y15, Y15
	VSUBPD Y12, Y15, Y3
	VSUBPD Y13, Y15, Y4
	VMINPD Y3, Y0, Y5 // each sub-block's ends, 0–3 and 4–7
	VMINPD Y4, Y1, Y6
	VMAXPD Y3, Y0, Y7
	VMAXPD Y4, Y1, Y8
	// the sub-blocks whose range reaches below fl or above fh
	VBROADCASTSD fl+40(FP), Y14
	VBROADCASTSD fh+48(FP), Y9
	VCMPPD $1, Y14, Y5, Y0
	VCMPPD $14, Y9, Y7, Y1
	VORPD Y1, Y0, Y0
	VMOVMSKPD Y0, AX
	VCMPPD $1, Y14, Y6, Y0
	VCMPPD $14, Y9, Y8, Y1
	VORPD Y1, Y0, Y0
	VMOVMSKPD Y0, BX
	SHLQ $4, BX
	ORQ BX, AX
	MOVQ AX, 40(DI)
	VMINPD Y6, Y5, Y5
	VMAXPD Y8, Y7, Y6
	VEXTRACTF128 $1, Y5, X7
	VMINPD X7, X5, X5
	VPERMILPD $1, X5, X7
	VMINSD X7, X5, X5
	VMOVSD X5, 24(DI)
	VEXTRACTF128 $1, Y6, X7
	VMAXPD X7, X6, X6
	VPERMILPD $1, X6, X7
	VMAXSD X7, X6, X6
	VMOVSD X6, 32(DI)

	// zero values possible: B = 0, or B/A an integer r with r·A = B
	VDIVPD Y10, Y12, Y0
	VROUNDPD $0, Y0, Y0
	VMULPD Y10, Y0, Y0
	VCMPPD $0, Y12, Y0, Y0
	VCMPPD $0, Y15, Y12, Y1
	VORPD Y1, Y0, Y0
	VDIVPD Y11, Y13, Y2
	VROUNDPD $0, Y2, Y2
	VMULPD Y11, Y2, Y2
	VCMPPD $0, Y13, Y2, Y2
	VCMPPD $0, Y15, Y13, Y3
	VORPD Y3, Y2, Y2
	VORPD Y2, Y0, Y0
	VMOVMSKPD Y0, AX
	TESTL AX, AX
	SETNE zero+72(FP)
	VZEROUPPER
	RET

// The Q5_K code sums (ggmlSumsQ5_K, kernel_ggml_sums.go): per group of 32
// bytes of low parts, the codes of its two sub-blocks (low and high nibble,
// each with its fifth bit from qh placed at bit 4: qh is shifted right by 2
// after each group, so that bits 0 and 1 are the group's), their byte sums
// by VPSADBW and their squares (up to 961) by VPMADDUBSW and VPMADDWD, per
// 8 bytes below 2^13, placed in bits 0, 16, 32 and 48 as q5kSums places
// them. Registers: Y5 qh, Y8 the word 1, Y12 the byte 0x10, Y13 the byte
// 0x0F, Y14 zero.

DATA ggmlBit4<>+0(SB)/8, $0x1010101010101010
GLOBL ggmlBit4<>(SB), RODATA|NOPTR, $8

// Q5GROUP writes the q5kSums word of the group of low parts at off(SI)
// (fifth bits in bits 0 and 1 of Y5's bytes) to dst(DI), and shifts Y5.
#define Q5GROUP(off, dst) \
	VMOVDQU off(SI), Y0 \
	VPSRLW $4, Y0, Y1 \
	VPAND Y13, Y0, Y0 \
	VPAND Y13, Y1, Y1 \
	VPSLLW $4, Y5, Y2 \
	VPAND Y12, Y2, Y2 \
	VPOR Y2, Y0, Y0 \
	VPSLLW $3, Y5, Y3 \
	VPAND Y12, Y3, Y3 \
	VPOR Y3, Y1, Y1 \
	VPSRLW $2, Y5, Y5 \
	VPMADDUBSW Y0, Y0, Y2 \
	VPMADDUBSW Y1, Y1, Y3 \
	VPMADDWD Y8, Y2, Y2 \
	VPMADDWD Y8, Y3, Y3 \
	VPSRLQ $32, Y2, Y4 \
	VPADDD Y4, Y2, Y2 \
	VPSRLQ $32, Y3, Y4 \
	VPADDD Y4, Y3, Y3 \
	VPSADBW Y14, Y0, Y0 \
	VPSADBW Y14, Y1, Y1 \
	PACK4(dst)

// func ggmlSumsQ5_KAsm(p *byte, n int, out *uint64)
TEXT ·ggmlSumsQ5_KAsm(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE q5kdone
	VPBROADCASTQ ggmlOnes16<>(SB), Y8
	VPBROADCASTQ ggmlBit4<>(SB), Y12
	VPBROADCASTQ ggmlLow4<>(SB), Y13
	VPXOR Y14, Y14, Y14

q5kloop:
	VMOVDQU 16(SI), Y5
	Q5GROUP(48, 0)
	Q5GROUP(80, 8)
	Q5GROUP(112, 16)
	Q5GROUP(144, 24)
	ADDQ $176, SI
	ADDQ $32, DI
	DECQ CX
	JNZ q5kloop
	VZEROUPPER

q5kdone:
	RET

// The Q5_K code sums in AVX-512: two groups of low parts to a ZMM register
// (Q5GROUP's fields for 64 bytes at a time, the fifth bits of the upper
// group from qh shifted right by 2), then the four groups' partial words
// reduced as ggmlSumsQ4_KAsm512 reduces them. Registers: Z8 the word 1, Z10
// and Z11 the fifth bits of groups 0|1 and 2|3, Z12 the byte 0x10, Z13 the
// byte 0x0F, Z14 zero, Z15 q4kEven.

// Q5G512 leaves in R the q5kSums fields of the 64 bytes of low parts at
// off(SI), per 8 bytes, their fifth bits in bits 0 and 1 of H's bytes (Z1-Z3,
// Z9 scratch).
#define Q5G512(off, H, R) \
	VMOVDQU64 off(SI), R \
	VPSRLW $4, R, Z1 \
	VPANDQ Z13, R, R \
	VPANDQ Z13, Z1, Z1 \
	VPSLLW $4, H, Z2 \
	VPANDQ Z12, Z2, Z2 \
	VPORQ Z2, R, R \
	VPSLLW $3, H, Z3 \
	VPANDQ Z12, Z3, Z3 \
	VPORQ Z3, Z1, Z1 \
	VPMADDUBSW R, R, Z2 \
	VPMADDUBSW Z1, Z1, Z3 \
	VPMADDWD Z8, Z2, Z2 \
	VPMADDWD Z8, Z3, Z3 \
	VPSRLQ $32, Z2, Z9 \
	VPADDD Z9, Z2, Z2 \
	VPSRLQ $32, Z3, Z9 \
	VPADDD Z9, Z3, Z3 \
	VPSADBW Z14, R, R \
	VPSADBW Z14, Z1, Z1 \
	VPSLLQ $16, Z1, Z1 \
	VPSLLQ $32, Z2, Z2 \
	VPSLLQ $48, Z3, Z3 \
	VPADDQ Z1, R, R \
	VPADDQ Z3, Z2, Z2 \
	VPADDQ Z2, R, R

// func ggmlSumsQ5_KAsm512(p *byte, n int, out *uint64)
TEXT ·ggmlSumsQ5_KAsm512(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE q5kzdone
	VPBROADCASTQ ggmlOnes16<>(SB), Z8
	VPBROADCASTQ ggmlBit4<>(SB), Z12
	VPBROADCASTQ ggmlLow4<>(SB), Z13
	VPXORQ Z14, Z14, Z14
	VMOVDQU64 q4kEven<>(SB), Z15

q5kzloop:
	VMOVDQU 16(SI), Y10
	VPSRLW $2, Y10, Y11
	VINSERTI64X4 $1, Y11, Z10, Z10 // qh | qh>>2: groups 0 and 1
	VPSRLW $4, Z10, Z11            // qh>>4 | qh>>6: groups 2 and 3
	Q5G512(48, Z10, Z4)
	Q5G512(112, Z11, Z5)
	VSHUFI64X2 $0x88, Z5, Z4, Z6
	VSHUFI64X2 $0xDD, Z5, Z4, Z7
	VPADDQ Z7, Z6, Z6
	VPSHUFD $0x4E, Z6, Z7
	VPADDQ Z7, Z6, Z6
	VPERMQ Z6, Z15, Z6
	VMOVDQU Y6, (DI)
	ADDQ $176, SI
	ADDQ $32, DI
	DECQ CX
	JNZ q5kzloop
	VZEROUPPER

q5kzdone:
	RET

// The Q5_1 code sums (ggmlSumsQ5_1, kernel_ggml_sums.go): per block, its 32
// codes (the low parts as the Q4_0 loop takes them, the fifth bits spread
// from qh as the Q5_0 fold spreads them), Σc by VPSADBW in bits 0-15 and Σc²
// by VPMADDUBSW and VPMADDWD in bits 32-63 (below 2^10 and 2^15). Registers:
// Y8 the word 1, Y11 the byte 0x10, Y12 the bit of each byte's code in its
// qh byte, Y13 the byte 0x0F, Y14 zero, Y15 the qh spread.

// func ggmlSumsQ5_1Asm(p *byte, n int, out *uint64)
TEXT ·ggmlSumsQ5_1Asm(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	TESTQ CX, CX
	JLE q51done
	VMOVDQU q5Spread<>(SB), Y15
	VMOVDQU q5Bits32<>(SB), Y12
	VPBROADCASTQ ggmlBit4<>(SB), Y11
	VPBROADCASTQ ggmlLow4<>(SB), Y13
	VPBROADCASTQ ggmlOnes16<>(SB), Y8
	VPXOR Y14, Y14, Y14

q51loop:
	VMOVDQU 8(SI), X2
	VPSRLW $4, X2, X3
	VINSERTI128 $1, X3, Y2, Y2
	VPAND Y13, Y2, Y2         // the low parts of codes 0-15, then 16-31
	VPBROADCASTD 4(SI), Y3
	VPSHUFB Y15, Y3, Y3
	VPAND Y12, Y3, Y3
	VPCMPEQB Y12, Y3, Y3
	VPAND Y11, Y3, Y3         // 16 where the fifth bit is set
	VPOR Y3, Y2, Y2           // the 32 codes
	VPSADBW Y14, Y2, Y0       // Σc per 8 codes
	VPMADDUBSW Y2, Y2, Y4
	VPMADDWD Y8, Y4, Y4
	VPSRLQ $32, Y4, Y5
	VPADDD Y5, Y4, Y4
	VPSLLQ $32, Y4, Y4        // Σc² per 8 codes, at bit 32
	VPADDQ Y4, Y0, Y0
	REDUCE
	MOVQ BX, (DI)
	ADDQ $24, SI
	ADDQ $8, DI
	DECQ CX
	JNZ q51loop
	VZEROUPPER

q51done:
	RET
