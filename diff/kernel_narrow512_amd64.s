//go:build amd64 && !noasm

// AVX-512 versions of the narrow loops (kernel_narrow.go) and of the range
// pass (narrowRange16), chosen over kernel_simd_amd64.s's AVX2 ones where the
// CPU has AVX-512 F, BW, VL and DQ (narrowAVX512). They give the same bits:
// a ZMM register holds the two chains of an AVX2 loop, chain 0's eight
// float32 lanes in its low half and chain 1's in its high half, so one
// VFMADD231PS on it does per lane what the AVX2 loop's two do, each pair in
// the same lane (narrowLane), every operation rounded the same way, the
// carries at the same iterations, and the diffLanes' float64 lanes (held in
// registers for the call) added to in the same order.
//
// Widening BF16: the AVX2 loop unpacks within 128-bit halves, so chain 0
// gets pairs 0-3 and 8-11 of an iteration and chain 1 pairs 4-7 and 12-15.
// Here one VPERMW puts pattern p of ZMM lane j (j = 0..15, in the high word
// of the lane, under a zero word: K1) for p the j-th of 0-3, 8-11, 4-7,
// 12-15. F16 widens 16 patterns in order with one VCVTPH2PS, as the AVX2
// loop's two do 8 by 8.
//
// Mask registers save instructions: the equal pairs are counted by a VCMPPS
// into a mask and a masked VPADDD of ones; max |B-A| is one VRANGEPS (the
// larger magnitude, sign cleared: max(max, |d|), exact); the range checks
// compare into masks.
//
// Latency: one FMA per accumulator per iteration leaves the loop bound by
// the FMA's latency, not by its throughput. A
// lane's float32 sums start from zero at every carry, so the 8 iterations
// between two carries (a block) are independent of the block before: the
// loops fold two blocks at a time, iteration i of block 0 and iteration i of
// block 1 in turn into two sets of registers, then carry block 0 and then
// block 1 into the float64 lanes, as the AVX2 loop would have one after the
// other. The same bits; twice the independent chains (measured 10% faster
// than one block at a time, docs/kernels.md). Fewer than 16
// iterations left (or, for a checking loop, a value out of range among
// them) go one iteration at a time, with a carry every N_CARRY.

#include "textflag.h"

// diffLanes offsets, as in kernel_simd_amd64.s (TestDiffAsmOffsets).
#define L_SSA 0
#define L_SSB 64
#define L_SSD 128
#define L_DOT 192
#define L_MAX 256
#define L_SAME 320

#define N_CARRY 8

// The VPERMW indices: word 2j+1 of the result is word P(j) of the table,
// P = 0-3, 8-11, 4-7, 12-15 (zpermA: A's 16 patterns in the table's low
// half; zpermB: B's in its high half, P + 16). Even words are zeroed (K1).
DATA zpermA<>+0(SB)/8, $0x0001000000000000
DATA zpermA<>+8(SB)/8, $0x0003000000020000
DATA zpermA<>+16(SB)/8, $0x0009000000080000
DATA zpermA<>+24(SB)/8, $0x000B0000000A0000
DATA zpermA<>+32(SB)/8, $0x0005000000040000
DATA zpermA<>+40(SB)/8, $0x0007000000060000
DATA zpermA<>+48(SB)/8, $0x000D0000000C0000
DATA zpermA<>+56(SB)/8, $0x000F0000000E0000
GLOBL zpermA<>(SB), RODATA|NOPTR, $64
DATA zpermB<>+0(SB)/8, $0x0011000000100000
DATA zpermB<>+8(SB)/8, $0x0013000000120000
DATA zpermB<>+16(SB)/8, $0x0019000000180000
DATA zpermB<>+24(SB)/8, $0x001B0000001A0000
DATA zpermB<>+32(SB)/8, $0x0015000000140000
DATA zpermB<>+40(SB)/8, $0x0017000000160000
DATA zpermB<>+48(SB)/8, $0x001D0000001C0000
DATA zpermB<>+56(SB)/8, $0x001F0000001E0000
GLOBL zpermB<>(SB), RODATA|NOPTR, $64

// Registers of the narrow loops:
//   Z0-Z3 ssa, ssb, ssd, dot of block 0 (float32: lanes 0-7 chain 0, 8-15
//   chain 1), Z4-Z7 those of block 1; Z8, Z9 max |B-A| of blocks 0 and 1;
//   Z10, Z11 their counts of equal pairs (int32); Z12, Z13 A's and B's
//   values of block 0, Z14, Z15 of block 1 (scratch in the range checks);
//   Z16-Z19 the diffLanes' ssa, ssb, ssd, dot (float64), Y23 its same;
//   Z20, Z21 the VPERMW indices (zpermA, zpermB); Z22 int32 ones;
//   Z24-Z27 scratch; Z28, Z29 the one-iteration BF16 check's bounds;
//   K1 the odd words; K2-K5 scratch.
//   SI A, DX B, CX groups left, R9 groups asked, DI lanes, R8 iterations
//   left in the block.

#define ZPROLOGUE \
	MOVQ a+0(FP), SI \
	MOVQ b+8(FP), DX \
	MOVQ groups+16(FP), CX \
	MOVQ l+24(FP), DI \
	MOVQ CX, R9 \
	VMOVUPD L_SSA(DI), Z16 \
	VMOVUPD L_SSB(DI), Z17 \
	VMOVUPD L_SSD(DI), Z18 \
	VMOVUPD L_DOT(DI), Z19 \
	VMOVDQU64 L_SAME(DI), Y23 \
	VMOVDQU64 zpermA<>(SB), Z20 \
	VMOVDQU64 zpermB<>(SB), Z21 \
	MOVL $0xAAAAAAAA, AX \
	KMOVD AX, K1 \
	MOVL $1, AX \
	VPBROADCASTD AX, Z22 \
	MOVL $0x4D00, AX \
	VPBROADCASTW AX, Z28 \
	MOVL $0x63FE, AX \
	VPBROADCASTW AX, Z29 \
	ZZERO0 \
	ZZERO1

// ZZERO0 and ZZERO1 start the float32 lanes of block 0 or 1, and its count
// of equal pairs, again from zero.
#define ZZERO0 \
	VPXORD Z0, Z0, Z0 \
	VPXORD Z1, Z1, Z1 \
	VPXORD Z2, Z2, Z2 \
	VPXORD Z3, Z3, Z3 \
	VPXORD Z8, Z8, Z8 \
	VPXORD Z10, Z10, Z10

#define ZZERO1 \
	VPXORD Z4, Z4, Z4 \
	VPXORD Z5, Z5, Z5 \
	VPXORD Z6, Z6, Z6 \
	VPXORD Z7, Z7, Z7 \
	VPXORD Z9, Z9, Z9 \
	VPXORD Z11, Z11, Z11

// ZFOLD folds the float32 values X (A) and Y (B) into the sums S_A, S_B,
// S_D, D_T, the maximum M_X and the count C_N, with KK scratch; Y is left
// holding B-A.
#define ZFOLD(X, Y, S_A, S_B, S_D, D_T, M_X, C_N, KK) \
	VFMADD231PS X, X, S_A \
	VFMADD231PS Y, Y, S_B \
	VFMADD231PS X, Y, D_T \
	VCMPPS $0, X, Y, KK \
	VPADDD Z22, C_N, KK, C_N \
	VSUBPS X, Y, Y \
	VFMADD231PS Y, Y, S_D \
	VRANGEPS $0x0B, Y, M_X, M_X

// ZCARRY1 adds chain 1 (the high half of S, a float32 sum) to chain 0 (its
// low half, Y_S) and the eight float32 lanes to the float64 lanes ACC.
#define ZCARRY1(S, Y_S, ACC) \
	VEXTRACTF64X4 $1, S, Y24 \
	VADDPS Y24, Y_S, Y24 \
	VCVTPS2PD Y24, Z24 \
	VADDPD Z24, ACC, ACC

// ZSAME adds the count C_N (int32 lane j) to the diffLanes' same (lane j
// mod 4, in Y23).
#define ZSAME(C_N, Y_CN) \
	VEXTRACTI64X4 $1, C_N, Y24 \
	VPADDD Y24, Y_CN, Y24 \
	VEXTRACTI32X4 $1, Y24, X25 \
	VPADDD X25, X24, X24 \
	VPMOVZXDQ X24, Y24 \
	VPADDQ Y24, Y23, Y23

// ZCARRY0 carries block 0 and its count and starts them again from zero.
// ZCARRY01 carries block 0 and then block 1, and both counts (the same
// integers whatever the order), and starts them again from zero.
#define ZSUMS0 \
	ZCARRY1(Z0, Y0, Z16) \
	ZCARRY1(Z1, Y1, Z17) \
	ZCARRY1(Z2, Y2, Z18) \
	ZCARRY1(Z3, Y3, Z19) \
	VPXORD Z0, Z0, Z0 \
	VPXORD Z1, Z1, Z1 \
	VPXORD Z2, Z2, Z2 \
	VPXORD Z3, Z3, Z3

#define ZCARRY0 \
	ZSUMS0 \
	ZSAME(Z10, Y10) \
	VPXORD Z10, Z10, Z10

#define ZCARRY01 \
	ZSUMS0 \
	ZCARRY1(Z4, Y4, Z16) \
	ZCARRY1(Z5, Y5, Z17) \
	ZCARRY1(Z6, Y6, Z18) \
	ZCARRY1(Z7, Y7, Z19) \
	VPXORD Z4, Z4, Z4 \
	VPXORD Z5, Z5, Z5 \
	VPXORD Z6, Z6, Z6 \
	VPXORD Z7, Z7, Z7 \
	VPADDD Z11, Z10, Z10 \
	ZSAME(Z10, Y10) \
	VPXORD Z10, Z10, Z10 \
	VPXORD Z11, Z11, Z11

// ZEPILOGUE carries what is left of block 0 (block 1 is carried by then),
// the maxima of both blocks and both chains, stores the float64 lanes and
// the count, and returns the groups folded.
#define ZEPILOGUE \
	ZCARRY0 \
	VMAXPS Z9, Z8, Z8 \
	VEXTRACTF64X4 $1, Z8, Y24 \
	VMAXPS Y24, Y8, Y24 \
	VCVTPS2PD Y24, Z24 \
	VMAXPD L_MAX(DI), Z24, Z24 \
	VMOVUPD Z24, L_MAX(DI) \
	VMOVUPD Z16, L_SSA(DI) \
	VMOVUPD Z17, L_SSB(DI) \
	VMOVUPD Z18, L_SSD(DI) \
	VMOVUPD Z19, L_DOT(DI) \
	VMOVDQU64 Y23, L_SAME(DI) \
	SUBQ CX, R9 \
	MOVQ R9, ret+32(FP) \
	VZEROUPPER \
	RET

// Widening, two blocks at a time (D...: iteration at SI and DX into Z12
// and Z13, that 8 iterations on, at 256(SI) and 256(DX), into Z14 and Z15)
// or one iteration (S...: into Z12 and Z13).
#define ZWIDEN_BF16(OFF, X, Y) \
	VMOVDQU64 OFF(SI), Y24 \
	VPERMW.Z Z24, Z20, K1, X \
	VMOVDQU64 OFF(DX), Y25 \
	VPERMW.Z Z25, Z20, K1, Y

#define DWIDEN_BF16 \
	ZWIDEN_BF16(0, Z12, Z13) \
	ZWIDEN_BF16(256, Z14, Z15)

#define DWIDEN_F16 \
	VCVTPH2PS (SI), Z12 \
	VCVTPH2PS (DX), Z13 \
	VCVTPH2PS 256(SI), Z14 \
	VCVTPH2PS 256(DX), Z15

#define SITER_BF16 \
	ZWIDEN_BF16(0, Z12, Z13)

// SITER_BF16_CHECK loads both sides' 16 patterns into one register (A's
// low, B's high), leaves the loop when one is out of BF16's narrow range
// and widens them. With u = 2·pattern mod 2^16 (the magnitude doubled) and
// v = u - 0x4D00 mod 2^16, a pattern is out of range when u is nonzero and
// v above 0x63FE: magnitudes 1..0x267F give v of 0xB302 and above,
// 0x5880..0x7FFF give 0x6400..0xB2FE, the range 0x2680..0x587F gives
// 0..0x63FE.
#define SITER_BF16_CHECK \
	VMOVDQU64 (SI), Y24 \
	VINSERTI64X4 $1, (DX), Z24, Z24 \
	VPADDW Z24, Z24, Z25 \
	VPTESTMW Z25, Z25, K3 \
	VPSUBW Z28, Z25, Z25 \
	VPCMPUW $6, Z29, Z25, K3, K4 \
	KORTESTD K4, K4 \
	JNZ zdone \
	VPERMW.Z Z24, Z20, K1, Z12 \
	VPERMW.Z Z24, Z21, K1, Z13

// SITER_F16_CHECK widens and leaves the loop when a value is a NaN or an
// infinity (VFPCLASSPS: QNaN, SNaN, +Inf, -Inf).
#define SITER_F16_CHECK \
	VCVTPH2PS (SI), Z12 \
	VCVTPH2PS (DX), Z13 \
	VFPCLASSPSZ $0x99, Z12, K3 \
	VFPCLASSPSZ $0x99, Z13, K4 \
	KORTESTW K3, K4 \
	JNZ zdone

// DCHECK_BF16 goes to the one-iteration loop (zsingle) when a pattern of
// the 16 iterations at SI and DX is out of BF16's narrow range, by the
// bounds of NCHECK_BF16: the largest magnitude (Z13 for A, Z15 for B) at
// most 0x587F, the smallest magnitude + 0x7FFF (Z12 abs16 added), as int16
// (Z26, Z27), at least 0xA67F as int16.
#define DCHECK16_BF16(OFF) \
	VPANDD OFF(SI), Z14, Z24 \
	VPANDD OFF(DX), Z14, Z25 \
	VPMAXSW Z24, Z13, Z13 \
	VPMAXSW Z25, Z15, Z15 \
	VPADDW Z14, Z24, Z24 \
	VPADDW Z14, Z25, Z25 \
	VPMINSW Z24, Z26, Z26 \
	VPMINSW Z25, Z27, Z27

#define DCHECK_BF16 \
	MOVL $0x7FFF, AX \
	VPBROADCASTW AX, Z14 \
	VPXORD Z13, Z13, Z13 \
	VPXORD Z15, Z15, Z15 \
	VMOVDQU64 Z14, Z26 \
	VMOVDQU64 Z14, Z27 \
	DCHECK16_BF16(0) \
	DCHECK16_BF16(64) \
	DCHECK16_BF16(128) \
	DCHECK16_BF16(192) \
	DCHECK16_BF16(256) \
	DCHECK16_BF16(320) \
	DCHECK16_BF16(384) \
	DCHECK16_BF16(448) \
	VPMAXSW Z15, Z13, Z13 \
	VPMINSW Z27, Z26, Z26 \
	MOVL $0x587F, AX \
	VPBROADCASTW AX, Z24 \
	MOVL $0xA67F, AX \
	VPBROADCASTW AX, Z25 \
	VPCMPGTW Z24, Z13, K4 \
	VPCMPGTW Z26, Z25, K5 \
	KORTESTD K4, K5 \
	JNZ zsingle

// DCHECK_F16 is DCHECK_BF16 for F16: the largest of 2·pattern mod 2^16
// (the magnitude doubled) at most 0xF7FE, 2·0x7BFF.
#define DCHECK16_F16(OFF) \
	VMOVDQU64 OFF(SI), Z24 \
	VMOVDQU64 OFF(DX), Z25 \
	VPADDW Z24, Z24, Z24 \
	VPADDW Z25, Z25, Z25 \
	VPMAXUW Z24, Z13, Z13 \
	VPMAXUW Z25, Z15, Z15

#define DCHECK_F16 \
	VPXORD Z13, Z13, Z13 \
	VPXORD Z15, Z15, Z15 \
	DCHECK16_F16(0) \
	DCHECK16_F16(64) \
	DCHECK16_F16(128) \
	DCHECK16_F16(192) \
	DCHECK16_F16(256) \
	DCHECK16_F16(320) \
	DCHECK16_F16(384) \
	DCHECK16_F16(448) \
	VPMAXUW Z15, Z13, Z13 \
	MOVL $0xF7FE, AX \
	VPBROADCASTW AX, Z24 \
	VPCMPUW $6, Z24, Z13, K4 \
	KORTESTD K4, K4 \
	JNZ zsingle

#define ZNONE

// ZLOOP is the body of an AVX-512 narrow loop: DCHECK the check of two
// blocks (16 iterations) before they are folded, DWIDEN their widening,
// SITER the load, check and widening of one iteration.
#define ZLOOP(DCHECK, DWIDEN, SITER) \
	ZPROLOGUE \
zdouble: \
	CMPQ CX, $4*N_CARRY \
	JLT zsingle \
	DCHECK \
	MOVQ $N_CARRY, R8 \
zdstep: \
	DWIDEN \
	ZFOLD(Z12, Z13, Z0, Z1, Z2, Z3, Z8, Z10, K2) \
	ZFOLD(Z14, Z15, Z4, Z5, Z6, Z7, Z9, Z11, K3) \
	ADDQ $32, SI \
	ADDQ $32, DX \
	DECQ R8 \
	JNZ zdstep \
	ZCARRY01 \
	ADDQ $32*N_CARRY, SI \
	ADDQ $32*N_CARRY, DX \
	SUBQ $4*N_CARRY, CX \
	JMP zdouble \
zsingle: \
	MOVQ $N_CARRY, R8 \
	CMPQ CX, $2 \
	JLT zdone \
zsloop: \
	SITER \
	ZFOLD(Z12, Z13, Z0, Z1, Z2, Z3, Z8, Z10, K2) \
	ADDQ $32, SI \
	ADDQ $32, DX \
	SUBQ $2, CX \
	DECQ R8 \
	JNZ znext \
	ZCARRY0 \
	MOVQ $N_CARRY, R8 \
znext: \
	CMPQ CX, $2 \
	JGE zsloop \
zdone: \
	ZEPILOGUE

// func diffNarrow512BF16(a, b *byte, groups int, l *diffLanes) int
TEXT ·diffNarrow512BF16(SB), NOSPLIT, $0-40
	ZLOOP(DCHECK_BF16, DWIDEN_BF16, SITER_BF16_CHECK)

// func diffNarrowIn512BF16(a, b *byte, groups int, l *diffLanes) int
TEXT ·diffNarrowIn512BF16(SB), NOSPLIT, $0-40
	ZLOOP(ZNONE, DWIDEN_BF16, SITER_BF16)

// func diffNarrow512F16(a, b *byte, groups int, l *diffLanes) int
TEXT ·diffNarrow512F16(SB), NOSPLIT, $0-40
	ZLOOP(DCHECK_F16, DWIDEN_F16, SITER_F16_CHECK)

// The range pass (narrowRange16) in ZMM registers: the same bounds and the
// same chains, 64 patterns per iteration (two vectors of 32), a last block
// of 64 bytes alone.

// func narrowRange512(p *byte, blocks int, hi, lo uint64) bool
TEXT ·narrowRange512(SB), NOSPLIT, $0-33
	MOVQ p+0(FP), SI
	MOVQ blocks+8(FP), CX
	MOVQ hi+16(FP), AX
	VPBROADCASTW AX, Z4
	MOVQ lo+24(FP), AX
	VPBROADCASTW AX, Z5
	MOVL $0x7FFF, AX
	VPBROADCASTW AX, Z3
	VPXORD Z0, Z0, Z0
	VPXORD Z6, Z6, Z6
	VMOVDQU64 Z3, Z1
	VMOVDQU64 Z3, Z7
	CMPQ CX, $2
	JLT rtail

rloop:
	VPANDD (SI), Z3, Z2
	VPANDD 64(SI), Z3, Z8
	VPMAXSW Z2, Z0, Z0
	VPMAXSW Z8, Z6, Z6
	VPADDW Z3, Z2, Z2
	VPADDW Z3, Z8, Z8
	VPMINSW Z2, Z1, Z1
	VPMINSW Z8, Z7, Z7
	ADDQ $128, SI
	SUBQ $2, CX
	CMPQ CX, $2
	JGE rloop

rtail:
	TESTQ CX, CX
	JZ rdone
	VPANDD (SI), Z3, Z2
	VPMAXSW Z2, Z0, Z0
	VPADDW Z3, Z2, Z2
	VPMINSW Z2, Z1, Z1

rdone:
	VPMAXSW Z6, Z0, Z0
	VPMINSW Z7, Z1, Z1
	VPCMPGTW Z4, Z0, K1
	VPCMPGTW Z1, Z5, K2
	KORTESTD K1, K2
	SETEQ ret+32(FP)
	VZEROUPPER
	RET
