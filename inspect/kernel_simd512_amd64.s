//go:build amd64 && !noasm

// AVX-512 (F, BW) versions of the narrow loops and the count loops of the
// vector scan kernels (see kernel_simd.go; the AVX2 loops they replace are
// in kernel_simd_amd64.s). They give the AVX2 loops' results to the bit, so
// the same Go twins (simdNarrowGo, simdCountGo, simdNarrow32Go,
// simdCount32Go) are the twins of both:
//
//   - a 64-byte vector holds what the AVX2 loops fold as two 32-byte ones,
//     and each float32 lane of an AVX2 accumulator has one lane of a 64-byte
//     accumulator, which takes the same terms in the same order from +0;
//     every N_PAIRS (N_PAIRS32) pairs the accumulators are added up exactly
//     as NARROW_CARRY adds them, (0 + 1) + (4 + 5) and (2 + 3) + (6 + 7) in
//     the AVX2 registers' numbering, and added to the float64 lanes in the
//     same order;
//   - the counts, the extremes and the smallest magnitude are kept in twice
//     as many 16-bit (32-bit) lanes, position mod 32 (mod 16), and the two
//     halves are folded into the AVX2 lanes (position mod 16, mod 8) at the
//     end: integer sums, minima and maxima do not depend on the grouping.
//
// A float32 lane's additions in a run depend on one another (that order is
// what keeps the result), and one 64-byte vector per pair would leave each
// accumulator's chain of additions as the only work: the loops take two
// runs at once instead, the pairs of a run and those of the next, into two
// sets of accumulators (runs are independent: each starts from +0), and
// carry the first run before the second.

#include "textflag.h"

#include "kernel_simd_amd64.h"

// Registers: Z0-Z3 the float32 accumulators of a run, Z4-Z7 those of the
// run beside it (per run: S, S2 the sums, Q, Q2 the squares); Z8 amin
// (16-bit counting loops: zeros), Z9 (counting loops: zeros for F32,
// nontiny for the 16-bit ones), Z15 (the F32 counting loop: nontiny), Z10
// smax, Z11 umax; Z12-Z14 scratch; Z16, Z17 the float64 lanes sum[0..1],
// sq[0..1]; Z20 the magnitude mask, Z21 the BF16 high pattern (loaded by
// every narrow loop; only BF16's use it), Z22 the
// largest subnormal magnitude, Z23 all ones. K1, K2 masks. SI data, CX pairs
// left, R9 pairs left in the run, DI lanes, R8 constants.

// RUN_BYTES is how many bytes a run takes: N_PAIRS pairs of 64 bytes (16-bit
// loops), N_PAIRS32 pairs of 128 bytes (F32).
#define RUN_BYTES 512

// KEYS16 and KEYS32 load 64 bytes at off(SI) into Z13 and keep their
// smallest magnitude (Z14: the magnitudes) and largest raw patterns.
#define KEYS16(off) \
	VMOVDQU64 off(SI), Z13 \
	VPANDD Z20, Z13, Z14 \
	VPMINUW Z14, Z8, Z8 \
	VPMAXSW Z13, Z10, Z10 \
	VPMAXUW Z13, Z11, Z11

// COUNTS16 is KEYS16 counting the zeros (Z8) and the magnitudes of at least
// the smallest normal (Z9) instead of keeping the smallest magnitude.
#define COUNTS16(off) \
	VMOVDQU64 off(SI), Z13 \
	VPANDD Z20, Z13, Z14 \
	VPTESTNMW Z20, Z13, K1 \
	VPCMPGTW Z22, Z14, K2 \
	VPSUBW Z23, Z8, K1, Z8 \
	VPSUBW Z23, Z9, K2, Z9 \
	VPMAXSW Z13, Z10, Z10 \
	VPMAXUW Z13, Z11, Z11

// ACC512 adds the 16 float32 values of V to S and their squares to Q.
#define ACC512(V, S, Q) \
	VADDPS V, S, S \
	VFMADD231PS V, V, Q

// The BF16 pair at off(SI): the even elements to S, Q (group 1 in the low
// half, group 2 in the high half: AVX2's Y0 | Y4), the odd ones to S2, Q2
// (Y1 | Y5).
#define BF16_PAIR(KEYS, off, S, S2, Q, Q2) \
	KEYS(off) \
	VPSLLD $16, Z13, Z14 \
	VPANDD Z21, Z13, Z13 \
	ACC512(Z14, S, Q) \
	ACC512(Z13, S2, Q2)

#define NBF16(off, S, S2, Q, Q2) BF16_PAIR(KEYS16, off, S, S2, Q, Q2)
#define NBF16_C(off, S, S2, Q, Q2) BF16_PAIR(COUNTS16, off, S, S2, Q, Q2)

// The F16 pair at off(SI): group 1 to S, Q (elements 0-7 in the low half,
// 8-15 in the high half: AVX2's Y0 | Y1), group 2 to S2, Q2 (Y4 | Y5).
#define F16_PAIR(KEYS, off, S, S2, Q, Q2) \
	KEYS(off) \
	VCVTPH2PS off(SI), Z14 \
	VCVTPH2PS off+32(SI), Z13 \
	ACC512(Z14, S, Q) \
	ACC512(Z13, S2, Q2)

#define NF16(off, S, S2, Q, Q2) F16_PAIR(KEYS16, off, S, S2, Q, Q2)
#define NF16_C(off, S, S2, Q, Q2) F16_PAIR(COUNTS16, off, S, S2, Q, Q2)

// The F32 pair at off(SI) (128 bytes): elements 0-15 to S, Q (AVX2's
// Y0 | Y1), 16-31 to S2, Q2 (Y4 | Y5); the keys in 32-bit lanes.
#define KEYS32(off) \
	VMOVDQU64 off(SI), Z13 \
	VPANDD Z20, Z13, Z14 \
	VPMINUD Z14, Z8, Z8 \
	VPMAXSD Z13, Z10, Z10 \
	VPMAXUD Z13, Z11, Z11

// COUNTS32 is KEYS32 counting the zeros (Z9) and the magnitudes of at least
// the smallest normal (Z15) as well.
#define COUNTS32(off) \
	KEYS32(off) \
	VPTESTNMD Z20, Z13, K1 \
	VPCMPGTD Z22, Z14, K2 \
	VPSUBD Z23, Z9, K1, Z9 \
	VPSUBD Z23, Z15, K2, Z15

#define F32_PAIR(KEYS, off, S, S2, Q, Q2) \
	KEYS(off) \
	ACC512(Z13, S, Q) \
	KEYS(off+64) \
	ACC512(Z13, S2, Q2)

#define NF32(off, S, S2, Q, Q2) F32_PAIR(KEYS32, off, S, S2, Q, Q2)
#define NF32_C(off, S, S2, Q, Q2) F32_PAIR(COUNTS32, off, S, S2, Q, Q2)

// FOLD512 adds A and B, then the two halves of the result, widens the 8
// float32 sums to float64 and adds them to ACC: for A = Y0 | Y4 and
// B = Y1 | Y5 that is NARROW_CARRY's (Y0 + Y1) + (Y4 + Y5).
#define FOLD512(A, B, ACC) \
	VADDPS B, A, Z12 \
	VEXTRACTF64X4 $1, Z12, Y13 \
	VADDPS Y13, Y12, Y12 \
	VCVTPS2PD Y12, Z12 \
	VADDPD Z12, ACC, ACC

// UNZIP512 turns A = a0 | a1 and B = b0 | b1 (halves of 256 bits) into
// A = a0 | b0 and B = a1 | b1.
#define UNZIP512(A, B) \
	VSHUFF64X2 $0x44, B, A, Z12 \
	VSHUFF64X2 $0xEE, B, A, B \
	VMOVAPS Z12, A

#define EMPTY512(S, S2, Q, Q2) \
	VPXORD S, S, S \
	VPXORD S2, S2, S2 \
	VPXORD Q, Q, Q \
	VPXORD Q2, Q2, Q2

// CARRY_BF16 carries a run of the BF16 loops (its accumulators are laid out
// as FOLD512 takes them) and empties its accumulators; CARRY_HALVES one of
// the F16 and F32 loops (each accumulator holds two of AVX2's, 0 | 1 and
// 4 | 5: unzipped first).
#define CARRY_BF16(S, S2, Q, Q2) \
	FOLD512(S, S2, Z16) \
	FOLD512(Q, Q2, Z17) \
	EMPTY512(S, S2, Q, Q2)

#define CARRY_HALVES(S, S2, Q, Q2) \
	UNZIP512(S, S2) \
	UNZIP512(Q, Q2) \
	CARRY_BF16(S, S2, Q, Q2)

// The lanes the loops keep besides the float32 accumulators: loaded into
// both halves (extremes, smallest magnitude) or the low half (counters),
// and folded back at the end.
#define AMIN16_IN VBROADCASTI64X4 L_AMIN(DI), Z8
#define AMIN16_OUT \
	VEXTRACTI64X4 $1, Z8, Y12 \
	VPMINUW Y12, Y8, Y8 \
	VMOVDQU Y8, L_AMIN(DI)

#define COUNTS16_IN \
	VMOVDQU L_ZEROS(DI), Y8 \
	VMOVDQU L_NONTINY(DI), Y9

#define COUNTS16_OUT \
	VEXTRACTI64X4 $1, Z8, Y12 \
	VPADDW Y12, Y8, Y8 \
	VMOVDQU Y8, L_ZEROS(DI) \
	VEXTRACTI64X4 $1, Z9, Y12 \
	VPADDW Y12, Y9, Y9 \
	VMOVDQU Y9, L_NONTINY(DI)

#define EXTREMES16_OUT \
	VEXTRACTI64X4 $1, Z10, Y12 \
	VPMAXSW Y12, Y10, Y10 \
	VMOVDQU Y10, L_SMAX(DI) \
	VEXTRACTI64X4 $1, Z11, Y12 \
	VPMAXUW Y12, Y11, Y11 \
	VMOVDQU Y11, L_UMAX(DI)

#define AMIN32_IN VBROADCASTI64X4 L_AMIN(DI), Z8
#define AMIN32_OUT \
	VEXTRACTI64X4 $1, Z8, Y12 \
	VPMINUD Y12, Y8, Y8 \
	VMOVDQU Y8, L_AMIN(DI)

#define COUNTS32_IN \
	AMIN32_IN \
	VMOVDQU L_ZEROS(DI), Y9 \
	VMOVDQU L_NONTINY(DI), Y15

#define COUNTS32_OUT \
	AMIN32_OUT \
	VEXTRACTI64X4 $1, Z9, Y12 \
	VPADDD Y12, Y9, Y9 \
	VMOVDQU Y9, L_ZEROS(DI) \
	VEXTRACTI64X4 $1, Z15, Y12 \
	VPADDD Y12, Y15, Y15 \
	VMOVDQU Y15, L_NONTINY(DI)

#define EXTREMES32_OUT \
	VEXTRACTI64X4 $1, Z10, Y12 \
	VPMAXSD Y12, Y10, Y10 \
	VMOVDQU Y10, L_SMAX(DI) \
	VEXTRACTI64X4 $1, Z11, Y12 \
	VPMAXUD Y12, Y11, Y11 \
	VMOVDQU Y11, L_UMAX(DI)

#define PROLOGUE512 \
	MOVQ p+0(FP), SI \
	MOVQ pairs+8(FP), CX \
	MOVQ l+16(FP), DI \
	MOVQ c+24(FP), R8 \
	VBROADCASTI64X4 C_ABS(R8), Z20 \
	VBROADCASTI64X4 C_HI(R8), Z21 \
	VBROADCASTI64X4 C_TINY(R8), Z22 \
	VPTERNLOGD $0xFF, Z23, Z23, Z23 \
	VBROADCASTI64X4 L_SMAX(DI), Z10 \
	VBROADCASTI64X4 L_UMAX(DI), Z11 \
	VMOVUPD L_SUM(DI), Z16 \
	VMOVUPD L_SQ(DI), Z17 \
	EMPTY512(Z0, Z1, Z2, Z3) \
	EMPTY512(Z4, Z5, Z6, Z7)

#define EPILOGUE512(EXTREMES) \
	EXTREMES \
	VMOVUPD Z16, L_SUM(DI) \
	VMOVUPD Z17, L_SQ(DI) \
	VZEROUPPER \
	RET

// LOOP512(PAIR, PAIR_BYTES, NP, CARRY, IN, OUT, EXTREMES) runs PAIR over
// the pairs in runs of NP, two runs at a time while there are 2·NP pairs
// left, then one (the last one may be shorter, as in NARROW_LOOP); IN
// loads and OUT stores the lanes PAIR keeps besides the extremes.
#define LOOP512(PAIR, PAIR_BYTES, NP, CARRY, IN, OUT, EXTREMES) \
	PROLOGUE512 \
	IN \
two: \
	CMPQ CX, $(2*NP) \
	JLT  one \
	SUBQ $(2*NP), CX \
	MOVQ $NP, R9 \
loop2: \
	PAIR(0, Z0, Z1, Z2, Z3) \
	PAIR(RUN_BYTES, Z4, Z5, Z6, Z7) \
	ADDQ $PAIR_BYTES, SI \
	DECQ R9 \
	JNZ  loop2 \
	CARRY(Z0, Z1, Z2, Z3) \
	CARRY(Z4, Z5, Z6, Z7) \
	ADDQ $RUN_BYTES, SI \
	JMP  two \
one: \
	TESTQ CX, CX \
	JZ   done \
	MOVQ $NP, R9 \
	CMPQ CX, R9 \
	CMOVQLT CX, R9 \
	SUBQ R9, CX \
loop1: \
	PAIR(0, Z0, Z1, Z2, Z3) \
	ADDQ $PAIR_BYTES, SI \
	DECQ R9 \
	JNZ  loop1 \
	CARRY(Z0, Z1, Z2, Z3) \
	JMP  one \
done: \
	OUT \
	EPILOGUE512(EXTREMES)

// The count loops take 64 bytes per iteration (two groups of 16 16-bit
// values, one of 16 F32 values), the counters of the second group in the
// high half for 16-bit values; an odd last group of 16-bit values is
// counted by the AVX2 steps once the halves are folded.
#define COUNT_PROLOGUE512 \
	MOVQ p+0(FP), SI \
	MOVQ groups+8(FP), CX \
	MOVQ l+16(FP), DI \
	MOVQ c+24(FP), R8 \
	VBROADCASTI64X4 C_ABS(R8), Z20 \
	VBROADCASTI64X4 C_TINY(R8), Z22 \
	VPTERNLOGD $0xFF, Z23, Z23, Z23 \
	VMOVDQU L_ZEROS(DI), Y10 \
	VMOVDQU L_NONTINY(DI), Y11

#define LOOP512_BF16(PAIR, IN, OUT) \
	LOOP512(PAIR, 64, N_PAIRS, CARRY_BF16, IN, OUT, EXTREMES16_OUT)

// func simdNarrowBF16AVX512(p *byte, pairs int, l *simdLanes, c *simdConsts)
TEXT ·simdNarrowBF16AVX512(SB), NOSPLIT, $0-32
	LOOP512_BF16(NBF16, AMIN16_IN, AMIN16_OUT)

// func simdNarrowCountBF16AVX512(p *byte, pairs int, l *simdLanes, c *simdConsts)
TEXT ·simdNarrowCountBF16AVX512(SB), NOSPLIT, $0-32
	LOOP512_BF16(NBF16_C, COUNTS16_IN, COUNTS16_OUT)

// func simdNarrowF16AVX512(p *byte, pairs int, l *simdLanes, c *simdConsts)
TEXT ·simdNarrowF16AVX512(SB), NOSPLIT, $0-32
	LOOP512(NF16, 64, N_PAIRS, CARRY_HALVES, AMIN16_IN, AMIN16_OUT, EXTREMES16_OUT)

// func simdNarrowCountF16AVX512(p *byte, pairs int, l *simdLanes, c *simdConsts)
TEXT ·simdNarrowCountF16AVX512(SB), NOSPLIT, $0-32
	LOOP512(NF16_C, 64, N_PAIRS, CARRY_HALVES, COUNTS16_IN, COUNTS16_OUT, EXTREMES16_OUT)

// func simdNarrowF32AVX512(p *byte, pairs int, l *simdLanes32, c *simdConsts32)
TEXT ·simdNarrowF32AVX512(SB), NOSPLIT, $0-32
	LOOP512(NF32, 128, N_PAIRS32, CARRY_HALVES, AMIN32_IN, AMIN32_OUT, EXTREMES32_OUT)

// func simdNarrowCountF32AVX512(p *byte, pairs int, l *simdLanes32, c *simdConsts32)
TEXT ·simdNarrowCountF32AVX512(SB), NOSPLIT, $0-32
	LOOP512(NF32_C, 128, N_PAIRS32, CARRY_HALVES, COUNTS32_IN, COUNTS32_OUT, EXTREMES32_OUT)

// func simdCount16AVX512(p *byte, groups int, l *simdLanes, c *simdConsts)
TEXT ·simdCount16AVX512(SB), NOSPLIT, $0-32
	COUNT_PROLOGUE512
	MOVQ CX, R9
	SHRQ $1, R9
	JZ   half
loop:
	VMOVDQU64 (SI), Z13
	VPANDD Z20, Z13, Z14
	VPTESTNMW Z20, Z13, K1
	VPCMPGTW Z22, Z14, K2
	VPSUBW Z23, Z10, K1, Z10
	VPSUBW Z23, Z11, K2, Z11
	ADDQ $64, SI
	DECQ R9
	JNZ  loop
half:
	VEXTRACTI64X4 $1, Z10, Y12
	VPADDW Y12, Y10, Y10
	VEXTRACTI64X4 $1, Z11, Y12
	VPADDW Y12, Y11, Y11
	TESTQ $1, CX
	JZ   done
	VPXOR Y12, Y12, Y12
	VMOVDQU (SI), Y13
	VPAND C_ABS(R8), Y13, Y14
	VPCMPEQW Y12, Y14, Y15
	VPSUBW Y15, Y10, Y10
	VPCMPGTW C_TINY(R8), Y14, Y15
	VPSUBW Y15, Y11, Y11
done:
	VMOVDQU Y10, L_ZEROS(DI)
	VMOVDQU Y11, L_NONTINY(DI)
	VZEROUPPER
	RET

// func simdCount32AVX512(p *byte, groups int, l *simdLanes32, c *simdConsts32)
TEXT ·simdCount32AVX512(SB), NOSPLIT, $0-32
	COUNT_PROLOGUE512
	TESTQ CX, CX
	JZ   done
loop:
	VMOVDQU64 (SI), Z13
	VPANDD Z20, Z13, Z14
	VPTESTNMD Z20, Z13, K1
	VPCMPGTD Z22, Z14, K2
	VPSUBD Z23, Z10, K1, Z10
	VPSUBD Z23, Z11, K2, Z11
	ADDQ $64, SI
	DECQ CX
	JNZ  loop
done:
	VEXTRACTI64X4 $1, Z10, Y12
	VPADDD Y12, Y10, Y10
	VMOVDQU Y10, L_ZEROS(DI)
	VEXTRACTI64X4 $1, Z11, Y12
	VPADDD Y12, Y11, Y11
	VMOVDQU Y11, L_NONTINY(DI)
	VZEROUPPER
	RET
