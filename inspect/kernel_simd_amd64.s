//go:build amd64 && !noasm

// AVX2 + FMA loops of the vector scan kernels (see kernel_simd.go).
//
// Every loop but the narrow ones (below: 32 elements per iteration, float32
// lanes) takes 16 elements (unaligned loads) per iteration and adds them into
// the lane accumulators of a simdLanes or simdLanes32 (laid out as below);
// the Go side resets the lanes, folds the leftover elements and reduces the
// lanes. Which element goes to which lane is fixed, and mirrored exactly by
// the Go twin simdLanesGo:
//   - keys and counters: 16-bit lanes, lane = element index mod 16 (BF16,
//     F16); 32-bit lanes, lane = element index mod 8 (F32);
//   - float64 lanes: for BF16, positions 0, 2, 4, 6 of a group of 16 go to
//     sum[0], 8, 10, 12, 14 to sum[1], 1, 3, 5, 7 to sum[2] and 9, 11, 13, 15
//     to sum[3] (the order in which WIDE_BF16 leaves them); for F16 and F32,
//     positions 0-3, 4-7, 8-11, 12-15 go to sum[0], ..., sum[3].
// The sums are sum += x and sq = fma(x, x, sq) in float64, one rounding each
// (the dev loops: d = x - pivot, sum += d, sq = fma(d, d, sq)).
//
// The 16-bit loops widen to float32 in registers, store the 16 float32 values
// to the lanes' scratch and widen them to float64 from there: VCVTPS2PD from
// memory needs no shuffle, and is measured 15% faster over the whole loop
// than extracting the upper halves of the registers.

#include "textflag.h"

#include "kernel_simd_amd64.h"

// Registers: Y0-Y3 sum, Y4-Y7 sq, Y8 kmin, Y9 kmax, Y10 zeros, Y11 nontiny
// (clean loops) or bad (masked loops), Y12 zero, Y13-Y15 scratch.
// SI data, CX groups left, DI lanes, R8 constants.

#define LOAD_LANES \
	VMOVUPD L_SUM+0(DI), Y0 \
	VMOVUPD L_SUM+32(DI), Y1 \
	VMOVUPD L_SUM+64(DI), Y2 \
	VMOVUPD L_SUM+96(DI), Y3 \
	VMOVUPD L_SQ+0(DI), Y4 \
	VMOVUPD L_SQ+32(DI), Y5 \
	VMOVUPD L_SQ+64(DI), Y6 \
	VMOVUPD L_SQ+96(DI), Y7 \
	VMOVDQU L_KMIN(DI), Y8 \
	VMOVDQU L_KMAX(DI), Y9 \
	VMOVDQU L_ZEROS(DI), Y10 \
	VPXOR Y12, Y12, Y12

#define STORE_SUMS \
	VMOVUPD Y0, L_SUM+0(DI) \
	VMOVUPD Y1, L_SUM+32(DI) \
	VMOVUPD Y2, L_SUM+64(DI) \
	VMOVUPD Y3, L_SUM+96(DI) \
	VMOVUPD Y4, L_SQ+0(DI) \
	VMOVUPD Y5, L_SQ+32(DI) \
	VMOVUPD Y6, L_SQ+64(DI) \
	VMOVUPD Y7, L_SQ+96(DI)

#define STORE_LANES \
	STORE_SUMS \
	VMOVDQU Y8, L_KMIN(DI) \
	VMOVDQU Y9, L_KMAX(DI) \
	VMOVDQU Y10, L_ZEROS(DI)

// KEYS turns the 16 patterns in Y13 into order keys in Y14: a sign-magnitude
// pattern with its magnitude bits flipped when negative, compared as int16
// (-0 sorts just below +0, as math.Min and math.Max order them).
#define KEYS \
	VPSRAW $15, Y13, Y14 \
	VPSRLW $1, Y14, Y14 \
	VPXOR Y13, Y14, Y14

// ACC adds the four float64 values of Y13 to sum[i] and sq[i].
#define ACC(S, Q) \
	VADDPD Y13, S, S \
	VFMADD231PD Y13, Y13, Q

// WIDE_BF16 stores the float32 values of the 16 BF16 patterns in Y13 to the
// scratch: a BF16 pattern in the high half of a 32-bit lane is its float32,
// so each lane shifted up gives the even elements (to L_SCRATCH) and each
// lane with its low half cleared the odd ones (to L_SCRATCH+32).
#define WIDE_BF16 \
	VPSLLD $16, Y13, Y14 \
	VPAND C_HI(R8), Y13, Y15 \
	VMOVDQU Y14, L_SCRATCH(DI) \
	VMOVDQU Y15, L_SCRATCH+32(DI)

// WIDE_F16 stores the float32 values of the 16 F16 patterns in Y13 to the
// scratch, converted exactly by F16C; WIDE_F16_MEM converts them from (SI).
#define WIDE_F16 \
	VEXTRACTI128 $1, Y13, X15 \
	VCVTPH2PS X13, Y14 \
	VCVTPH2PS X15, Y15 \
	VMOVDQU Y14, L_SCRATCH(DI) \
	VMOVDQU Y15, L_SCRATCH+32(DI)

#define WIDE_F16_MEM \
	VCVTPH2PS (SI), Y14 \
	VCVTPH2PS 16(SI), Y15 \
	VMOVDQU Y14, L_SCRATCH(DI) \
	VMOVDQU Y15, L_SCRATCH+32(DI)

// SUMS_WIDE widens the 16 float32 values in the scratch to float64 and adds
// them to the sums.
#define SUMS_WIDE \
	VCVTPS2PD L_SCRATCH+0(DI), Y13 \
	ACC(Y0, Y4) \
	VCVTPS2PD L_SCRATCH+16(DI), Y13 \
	ACC(Y1, Y5) \
	VCVTPS2PD L_SCRATCH+32(DI), Y13 \
	ACC(Y2, Y6) \
	VCVTPS2PD L_SCRATCH+48(DI), Y13 \
	ACC(Y3, Y7)

#define SUMS_BF16 \
	WIDE_BF16 \
	SUMS_WIDE

#define SUMS_F16 \
	WIDE_F16 \
	SUMS_WIDE

#define SUMS_F16_MEM \
	WIDE_F16_MEM \
	SUMS_WIDE

// CLEAN_STEP counts and folds 16 elements at (SI), assuming none is a NaN
// or an infinity (the caller checks the keys afterwards).
#define CLEAN_STEP(SUMS) \
	VMOVDQU (SI), Y13 \
	VPAND C_ABS(R8), Y13, Y14 \
	VPCMPEQW Y12, Y14, Y15 \
	VPSUBW Y15, Y10, Y10 \
	VPCMPGTW C_TINY(R8), Y14, Y15 \
	VPSUBW Y15, Y11, Y11 \
	KEYS \
	VPMINSW Y14, Y8, Y8 \
	VPMAXSW Y14, Y9, Y9 \
	SUMS

// COUNT_MEM adds one to the 16-bit counters at off(DI) in the lanes whose
// mask in Y14 is set (Y14 is clobbered).
#define COUNT_MEM(off) \
	VPSRLW $15, Y14, Y14 \
	VPADDW off(DI), Y14, Y14 \
	VMOVDQU Y14, off(DI)

// MASKED_STEP is CLEAN_STEP for data that holds NaN or infinities: they are
// counted (Y15 holds the mask of the non-finite lanes), their patterns become
// +0 for the sums, and their keys are saturated to the largest key for the
// minimum, then to the smallest for the maximum, so they change neither
// (three saturating steps of 0x7FFF carry any int16 to either end).
#define MASKED_STEP(SUMS) \
	VMOVDQU (SI), Y13 \
	VPAND C_ABS(R8), Y13, Y15 \
	VPCMPEQW Y12, Y15, Y14 \
	VPSUBW Y14, Y10, Y10 \
	VPCMPGTW C_TINY(R8), Y15, Y14 \
	COUNT_MEM(L_NONTINY) \
	VPCMPGTW C_FINITE(R8), Y15, Y15 \
	VPSUBW Y15, Y11, Y11 \
	VPCMPEQW C_PINF(R8), Y13, Y14 \
	COUNT_MEM(L_PINF) \
	VPCMPEQW C_NINF(R8), Y13, Y14 \
	COUNT_MEM(L_NINF) \
	KEYS \
	VPANDN Y13, Y15, Y13 \
	VPSRLW $1, Y15, Y15 \
	VPADDSW Y15, Y14, Y14 \
	VPADDSW Y15, Y14, Y14 \
	VPADDSW Y15, Y14, Y14 \
	VPMINSW Y14, Y8, Y8 \
	VPSUBSW Y15, Y14, Y14 \
	VPSUBSW Y15, Y14, Y14 \
	VPSUBSW Y15, Y14, Y14 \
	VPMAXSW Y14, Y9, Y9 \
	SUMS

// DEV_STEP folds 16 elements at (SI) as deviations from the pivot in Y8.
#define DEV_ACC(S, Q) \
	VSUBPD Y8, Y13, Y13 \
	ACC(S, Q)

#define DEV_WIDE \
	VCVTPS2PD L_SCRATCH+0(DI), Y13 \
	DEV_ACC(Y0, Y4) \
	VCVTPS2PD L_SCRATCH+16(DI), Y13 \
	DEV_ACC(Y1, Y5) \
	VCVTPS2PD L_SCRATCH+32(DI), Y13 \
	DEV_ACC(Y2, Y6) \
	VCVTPS2PD L_SCRATCH+48(DI), Y13 \
	DEV_ACC(Y3, Y7)

#define DEV_BF16 \
	VMOVDQU (SI), Y13 \
	WIDE_BF16 \
	DEV_WIDE

#define DEV_F16 \
	WIDE_F16_MEM \
	DEV_WIDE

#define PROLOGUE \
	MOVQ p+0(FP), SI \
	MOVQ groups+8(FP), CX \
	MOVQ l+16(FP), DI \
	MOVQ c+24(FP), R8 \
	LOAD_LANES

#define DEV_PROLOGUE \
	MOVQ p+0(FP), SI \
	MOVQ groups+8(FP), CX \
	MOVQ l+24(FP), DI \
	MOVQ c+32(FP), R8 \
	VBROADCASTSD pivot+16(FP), Y8 \
	VMOVUPD L_SUM+0(DI), Y0 \
	VMOVUPD L_SUM+32(DI), Y1 \
	VMOVUPD L_SUM+64(DI), Y2 \
	VMOVUPD L_SUM+96(DI), Y3 \
	VMOVUPD L_SQ+0(DI), Y4 \
	VMOVUPD L_SQ+32(DI), Y5 \
	VMOVUPD L_SQ+64(DI), Y6 \
	VMOVUPD L_SQ+96(DI), Y7 \
	VPXOR Y12, Y12, Y12


// ACCV adds the four float64 values of V to sum and sq.
#define ACCV(V, S, Q) \
	VADDPD V, S, S \
	VFMADD231PD V, V, Q

// COUNT_MEM32 is COUNT_MEM for 32-bit counters.
#define COUNT_MEM32(off) \
	VPSRLD $31, Y14, Y14 \
	VPADDD off(DI), Y14, Y14 \
	VMOVDQU Y14, off(DI)

// HALF32 counts and folds the 8 F32 elements at off(SI), assuming all are
// finite; the floats are widened straight from memory.
#define HALF32(off, Sa, Qa, Sb, Qb) \
	VMOVDQU off(SI), Y13 \
	VPAND C_ABS(R8), Y13, Y14 \
	VPCMPEQD C_ZERO(R8), Y14, Y15 \
	VPSUBD Y15, Y10, Y10 \
	VPCMPGTD C_TINY(R8), Y14, Y15 \
	VPSUBD Y15, Y11, Y11 \
	VPSRAD $31, Y13, Y14 \
	VPSRLD $1, Y14, Y14 \
	VPXOR Y13, Y14, Y14 \
	VPMINSD Y14, Y8, Y8 \
	VPMAXSD Y14, Y9, Y9 \
	VCVTPS2PD off(SI), Y13 \
	ACCV(Y13, Sa, Qa) \
	VCVTPS2PD off+16(SI), Y12 \
	ACCV(Y12, Sb, Qb)

// HALF32_MASKED is HALF32 for data that holds NaN or infinities (Y15: the
// mask of the non-finite lanes, whose patterns become +0 and whose keys are
// replaced by the largest int32 for the minimum, the smallest for the
// maximum).
#define HALF32_MASKED(off, Sa, Qa, Sb, Qb) \
	VMOVDQU off(SI), Y13 \
	VPAND C_ABS(R8), Y13, Y15 \
	VPCMPEQD C_ZERO(R8), Y15, Y14 \
	VPSUBD Y14, Y10, Y10 \
	VPCMPGTD C_TINY(R8), Y15, Y14 \
	COUNT_MEM32(L_NONTINY) \
	VPCMPGTD C_FINITE(R8), Y15, Y15 \
	VPSUBD Y15, Y11, Y11 \
	VPCMPEQD C_PINF(R8), Y13, Y14 \
	COUNT_MEM32(L_PINF) \
	VPCMPEQD C_NINF(R8), Y13, Y14 \
	COUNT_MEM32(L_NINF) \
	VPSRAD $31, Y13, Y14 \
	VPSRLD $1, Y14, Y14 \
	VPXOR Y13, Y14, Y14 \
	VPANDN Y13, Y15, Y13 \
	VPBLENDVB Y15, C_ABS(R8), Y14, Y12 \
	VPMINSD Y12, Y8, Y8 \
	VPBLENDVB Y15, C_MININT(R8), Y14, Y12 \
	VPMAXSD Y12, Y9, Y9 \
	VCVTPS2PD X13, Y14 \
	ACCV(Y14, Sa, Qa) \
	VEXTRACTF128 $1, Y13, X13 \
	VCVTPS2PD X13, Y14 \
	ACCV(Y14, Sb, Qb)

// DEV32 folds 4 F32 elements at off(SI) as deviations from the pivot in Y8.
#define DEV32(off, S, Q) \
	VCVTPS2PD off(SI), Y13 \
	VSUBPD Y8, Y13, Y13 \
	ACCV(Y13, S, Q)

#define LOAD_LANES32 \
	VMOVUPD L_SUM+0(DI), Y0 \
	VMOVUPD L_SUM+32(DI), Y1 \
	VMOVUPD L_SUM+64(DI), Y2 \
	VMOVUPD L_SUM+96(DI), Y3 \
	VMOVUPD L_SQ+0(DI), Y4 \
	VMOVUPD L_SQ+32(DI), Y5 \
	VMOVUPD L_SQ+64(DI), Y6 \
	VMOVUPD L_SQ+96(DI), Y7 \
	VMOVDQU L_KMIN(DI), Y8 \
	VMOVDQU L_KMAX(DI), Y9 \
	VMOVDQU L_ZEROS(DI), Y10

// F32: the same register use, 8 elements per vector, two vectors per group
// of 16 (64 bytes); Y12 is scratch (no zero register).
#define PROLOGUE32 \
	MOVQ p+0(FP), SI \
	MOVQ groups+8(FP), CX \
	MOVQ l+16(FP), DI \
	MOVQ c+24(FP), R8 \
	LOAD_LANES32

// The narrow loops (BF16, F16) take pairs of groups of 16: per group, the
// counts and the raw extremes in 16-bit lanes, and the sums of x and x² in
// float32 lanes, the first group of a pair in Y0-Y3, the second in Y4-Y7
// (eight chains, so that no addition waits for the one before). Every
// N_PAIRS pairs (and at the end) the float32 lanes are added up, widened and
// added to the float64 lanes (see kernel_simd.go for why that keeps the
// promised accuracy). No NaN or infinity is kept out: the caller checks the
// extremes afterwards.
//
// The zeros and subnormals are not counted by simdNarrowBF16 and
// simdNarrowF16: they keep the smallest magnitude, and only a block where
// that is below the smallest normal is counted again by simdCount16. The
// counting loops (simdNarrowCountBF16, simdNarrowCountF16) count them as
// CLEAN_STEP does, for blocks expected to need it; their sums are the same.
//
// Registers: Y0, Y1 the float32 sums of the two vectors the first group of
// a pair widens to, Y2, Y3 their squares; Y4-Y7 the same for the second
// group; Y8 amin (counting loops: zeros), Y9 (counting loops: nontiny), Y10
// smax (int16), Y11 umax (uint16), Y12 (counting loops: zero); Y13-Y15
// scratch. SI data, CX pairs left, R9 pairs left in the run, DI lanes, R8
// constants.

// NARROW_BF16 and NARROW_F16 fold the 16 elements at off(SI) into the sums
// S, S', the squares Q, Q'. BF16: the even elements go to S, Q and the odd
// ones to S', Q' (as WIDE_BF16 splits them); F16: elements 0-7 to S, Q,
// 8-15 to S', Q'. The squares are exact for both (one rounding: the
// addition's).
#define NARROW_KEYS(off) \
	VMOVDQU off(SI), Y13 \
	VPAND C_ABS(R8), Y13, Y14 \
	VPMINUW Y14, Y8, Y8 \
	VPMAXSW Y13, Y10, Y10 \
	VPMAXUW Y13, Y11, Y11

#define NARROW_COUNTS(off) \
	VMOVDQU off(SI), Y13 \
	VPAND C_ABS(R8), Y13, Y14 \
	VPCMPEQW Y12, Y14, Y15 \
	VPSUBW Y15, Y8, Y8 \
	VPCMPGTW C_TINY(R8), Y14, Y15 \
	VPSUBW Y15, Y9, Y9 \
	VPMAXSW Y13, Y10, Y10 \
	VPMAXUW Y13, Y11, Y11

#define NARROW_ACC(S, S2, Q, Q2) \
	VADDPS Y14, S, S \
	VFMADD231PS Y14, Y14, Q \
	VADDPS Y13, S2, S2 \
	VFMADD231PS Y13, Y13, Q2

#define NARROW_BF16(off, S, S2, Q, Q2) \
	NARROW_KEYS(off) \
	VPSLLD $16, Y13, Y14 \
	VPAND C_HI(R8), Y13, Y13 \
	NARROW_ACC(S, S2, Q, Q2)

#define NARROW_F16(off, S, S2, Q, Q2) \
	NARROW_KEYS(off) \
	VCVTPH2PS off(SI), Y14 \
	VCVTPH2PS off+16(SI), Y13 \
	NARROW_ACC(S, S2, Q, Q2)

#define NARROW_BF16_C(off, S, S2, Q, Q2) \
	NARROW_COUNTS(off) \
	VPSLLD $16, Y13, Y14 \
	VPAND C_HI(R8), Y13, Y13 \
	NARROW_ACC(S, S2, Q, Q2)

#define NARROW_F16_C(off, S, S2, Q, Q2) \
	NARROW_COUNTS(off) \
	VCVTPH2PS off(SI), Y14 \
	VCVTPH2PS off+16(SI), Y13 \
	NARROW_ACC(S, S2, Q, Q2)

// NARROW_CARRY adds the float32 lanes up, (Y0 + Y1) + (Y4 + Y5) for the
// sums and (Y2 + Y3) + (Y6 + Y7) for the squares, widens their 8 lanes to
// float64 and adds them to sum[0], sum[1] (sq[0], sq[1]); then empties the
// float32 lanes.
#define NARROW_CARRY \
	VADDPS Y1, Y0, Y0 \
	VADDPS Y5, Y4, Y4 \
	VADDPS Y4, Y0, Y0 \
	VADDPS Y3, Y2, Y2 \
	VADDPS Y7, Y6, Y6 \
	VADDPS Y6, Y2, Y2 \
	VCVTPS2PD X0, Y13 \
	VADDPD L_SUM+0(DI), Y13, Y13 \
	VMOVUPD Y13, L_SUM+0(DI) \
	VEXTRACTF128 $1, Y0, X0 \
	VCVTPS2PD X0, Y13 \
	VADDPD L_SUM+32(DI), Y13, Y13 \
	VMOVUPD Y13, L_SUM+32(DI) \
	VCVTPS2PD X2, Y13 \
	VADDPD L_SQ+0(DI), Y13, Y13 \
	VMOVUPD Y13, L_SQ+0(DI) \
	VEXTRACTF128 $1, Y2, X2 \
	VCVTPS2PD X2, Y13 \
	VADDPD L_SQ+32(DI), Y13, Y13 \
	VMOVUPD Y13, L_SQ+32(DI) \
	NARROW_EMPTY

#define NARROW_EMPTY \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y2, Y2, Y2 \
	VXORPS Y3, Y3, Y3 \
	VXORPS Y4, Y4, Y4 \
	VXORPS Y5, Y5, Y5 \
	VXORPS Y6, Y6, Y6 \
	VXORPS Y7, Y7, Y7

#define NARROW_PROLOGUE \
	MOVQ p+0(FP), SI \
	MOVQ pairs+8(FP), CX \
	MOVQ l+16(FP), DI \
	MOVQ c+24(FP), R8 \
	VMOVDQU L_SMAX(DI), Y10 \
	VMOVDQU L_UMAX(DI), Y11 \
	NARROW_EMPTY

#define NARROW_AMIN_IN \
	VMOVDQU L_AMIN(DI), Y8

#define NARROW_AMIN_OUT \
	VMOVDQU Y8, L_AMIN(DI)

#define NARROW_COUNTS_IN \
	VMOVDQU L_ZEROS(DI), Y8 \
	VMOVDQU L_NONTINY(DI), Y9 \
	VPXOR Y12, Y12, Y12

#define NARROW_COUNTS_OUT \
	VMOVDQU Y8, L_ZEROS(DI) \
	VMOVDQU Y9, L_NONTINY(DI)

#define NARROW_EPILOGUE \
	VMOVDQU Y10, L_SMAX(DI) \
	VMOVDQU Y11, L_UMAX(DI) \
	VZEROUPPER \
	RET

// NARROW_LOOP(STEP, IN, OUT) runs STEP over the pairs in runs of N_PAIRS;
// IN loads and OUT stores the lanes STEP keeps besides the extremes.
#define NARROW_LOOP(STEP, IN, OUT) \
	NARROW_PROLOGUE \
	IN \
	TESTQ CX, CX \
	JZ   done \
run: \
	MOVQ $N_PAIRS, R9 \
	CMPQ CX, R9 \
	CMOVQLT CX, R9 \
	SUBQ R9, CX \
loop: \
	STEP(0, Y0, Y1, Y2, Y3) \
	STEP(32, Y4, Y5, Y6, Y7) \
	ADDQ $64, SI \
	DECQ R9 \
	JNZ  loop \
	NARROW_CARRY \
	TESTQ CX, CX \
	JNZ  run \
done: \
	OUT \
	NARROW_EPILOGUE

// func simdNarrowBF16(p *byte, pairs int, l *simdLanes, c *simdConsts)
TEXT ·simdNarrowBF16(SB), NOSPLIT, $0-32
	NARROW_LOOP(NARROW_BF16, NARROW_AMIN_IN, NARROW_AMIN_OUT)

// func simdNarrowF16(p *byte, pairs int, l *simdLanes, c *simdConsts)
TEXT ·simdNarrowF16(SB), NOSPLIT, $0-32
	NARROW_LOOP(NARROW_F16, NARROW_AMIN_IN, NARROW_AMIN_OUT)

// func simdNarrowCountBF16(p *byte, pairs int, l *simdLanes, c *simdConsts)
TEXT ·simdNarrowCountBF16(SB), NOSPLIT, $0-32
	NARROW_LOOP(NARROW_BF16_C, NARROW_COUNTS_IN, NARROW_COUNTS_OUT)

// func simdNarrowCountF16(p *byte, pairs int, l *simdLanes, c *simdConsts)
TEXT ·simdNarrowCountF16(SB), NOSPLIT, $0-32
	NARROW_LOOP(NARROW_F16_C, NARROW_COUNTS_IN, NARROW_COUNTS_OUT)

// The F32 narrow loop takes pairs of groups of 16 F32 values (128 bytes) as
// four vectors of 8: elements 0-7 to the sums Y0 and squares Y2, 8-15 to
// Y1, Y3, 16-23 to Y4, Y6, 24-31 to Y5, Y7, so that NARROW_CARRY adds them
// up as (0-7 + 8-15) + (16-23 + 24-31). The extremes and the smallest
// magnitude are kept on the raw patterns in 32-bit lanes (position mod 8):
// Y8 amin (VPMINUD of the magnitudes), Y10 smax (VPMAXSD), Y11 umax
// (VPMAXUD), at the same offsets as the 16-bit narrow loops' (simdLanes32
// is laid out so). The squares are rounded once, in the fused
// multiply-add, with the addition.
#define NARROW32_VEC(off, S, Q) \
	VMOVDQU off(SI), Y13 \
	VPAND C_ABS(R8), Y13, Y14 \
	VPMINUD Y14, Y8, Y8 \
	VPMAXSD Y13, Y10, Y10 \
	VPMAXUD Y13, Y11, Y11 \
	VADDPS Y13, S, S \
	VFMADD231PS Y13, Y13, Q

// NARROW32_VEC_C is NARROW32_VEC counting the zeros (Y9) and the
// magnitudes of at least the smallest normal (Y12) as well, as HALF32 does.
#define NARROW32_VEC_C(off, S, Q) \
	VMOVDQU off(SI), Y13 \
	VPAND C_ABS(R8), Y13, Y14 \
	VPMINUD Y14, Y8, Y8 \
	VPCMPEQD C_ZERO(R8), Y14, Y15 \
	VPSUBD Y15, Y9, Y9 \
	VPCMPGTD C_TINY(R8), Y14, Y15 \
	VPSUBD Y15, Y12, Y12 \
	VPMAXSD Y13, Y10, Y10 \
	VPMAXUD Y13, Y11, Y11 \
	VADDPS Y13, S, S \
	VFMADD231PS Y13, Y13, Q

#define NARROW32_COUNTS_IN \
	VMOVDQU L_ZEROS(DI), Y9 \
	VMOVDQU L_NONTINY(DI), Y12

#define NARROW32_COUNTS_OUT \
	VMOVDQU Y9, L_ZEROS(DI) \
	VMOVDQU Y12, L_NONTINY(DI)

#define NO_LANES

// NARROW32_LOOP(VEC, IN, OUT) runs VEC over the pairs in runs of N_PAIRS32;
// IN loads and OUT stores the counters VEC keeps besides amin and the
// extremes.
#define NARROW32_LOOP(VEC, IN, OUT) \
	NARROW_PROLOGUE \
	NARROW_AMIN_IN \
	IN \
	TESTQ CX, CX \
	JZ   done \
run: \
	MOVQ $N_PAIRS32, R9 \
	CMPQ CX, R9 \
	CMOVQLT CX, R9 \
	SUBQ R9, CX \
loop: \
	VEC(0, Y0, Y2) \
	VEC(32, Y1, Y3) \
	VEC(64, Y4, Y6) \
	VEC(96, Y5, Y7) \
	ADDQ $128, SI \
	DECQ R9 \
	JNZ  loop \
	NARROW_CARRY \
	TESTQ CX, CX \
	JNZ  run \
done: \
	OUT \
	NARROW_AMIN_OUT \
	NARROW_EPILOGUE

// func simdNarrowF32(p *byte, pairs int, l *simdLanes32, c *simdConsts32)
TEXT ·simdNarrowF32(SB), NOSPLIT, $0-32
	NARROW32_LOOP(NARROW32_VEC, NO_LANES, NO_LANES)

// func simdNarrowCountF32(p *byte, pairs int, l *simdLanes32, c *simdConsts32)
TEXT ·simdNarrowCountF32(SB), NOSPLIT, $0-32
	NARROW32_LOOP(NARROW32_VEC_C, NARROW32_COUNTS_IN, NARROW32_COUNTS_OUT)

// func simdCount32(p *byte, groups int, l *simdLanes32, c *simdConsts32)
//
// simdCount32 counts the zeros and the magnitudes of at least the smallest
// normal of groups×16 F32 values at p, as HALF32 does.
#define COUNT32_VEC(off) \
	VMOVDQU off(SI), Y13 \
	VPAND C_ABS(R8), Y13, Y14 \
	VPCMPEQD C_ZERO(R8), Y14, Y15 \
	VPSUBD Y15, Y10, Y10 \
	VPCMPGTD C_TINY(R8), Y14, Y15 \
	VPSUBD Y15, Y11, Y11

TEXT ·simdCount32(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ groups+8(FP), CX
	MOVQ l+16(FP), DI
	MOVQ c+24(FP), R8
	VMOVDQU L_ZEROS(DI), Y10
	VMOVDQU L_NONTINY(DI), Y11
	TESTQ CX, CX
	JZ   done
loop:
	COUNT32_VEC(0)
	COUNT32_VEC(32)
	ADDQ $64, SI
	DECQ CX
	JNZ  loop
done:
	VMOVDQU Y10, L_ZEROS(DI)
	VMOVDQU Y11, L_NONTINY(DI)
	VZEROUPPER
	RET

// func simdCount16(p *byte, groups int, l *simdLanes, c *simdConsts)
//
// simdCount16 counts the zeros and the magnitudes of at least the smallest
// normal of groups×16 16-bit floats at p, as CLEAN_STEP does.
TEXT ·simdCount16(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ groups+8(FP), CX
	MOVQ l+16(FP), DI
	MOVQ c+24(FP), R8
	VMOVDQU L_ZEROS(DI), Y10
	VMOVDQU L_NONTINY(DI), Y11
	VPXOR Y12, Y12, Y12
	TESTQ CX, CX
	JZ   done
loop:
	VMOVDQU (SI), Y13
	VPAND C_ABS(R8), Y13, Y14
	VPCMPEQW Y12, Y14, Y15
	VPSUBW Y15, Y10, Y10
	VPCMPGTW C_TINY(R8), Y14, Y15
	VPSUBW Y15, Y11, Y11
	ADDQ $32, SI
	DECQ CX
	JNZ  loop
done:
	VMOVDQU Y10, L_ZEROS(DI)
	VMOVDQU Y11, L_NONTINY(DI)
	VZEROUPPER
	RET

// func simdLanesBF16(p *byte, groups int, l *simdLanes, c *simdConsts)
TEXT ·simdLanesBF16(SB), NOSPLIT, $0-32
	PROLOGUE
	VMOVDQU L_NONTINY(DI), Y11
	TESTQ CX, CX
	JZ   done
loop:
	CLEAN_STEP(SUMS_BF16)
	ADDQ $32, SI
	DECQ CX
	JNZ  loop
done:
	STORE_LANES
	VMOVDQU Y11, L_NONTINY(DI)
	VZEROUPPER
	RET

// func simdLanesMaskedBF16(p *byte, groups int, l *simdLanes, c *simdConsts)
TEXT ·simdLanesMaskedBF16(SB), NOSPLIT, $0-32
	PROLOGUE
	VMOVDQU L_BAD(DI), Y11
	TESTQ CX, CX
	JZ   done
loop:
	MASKED_STEP(SUMS_BF16)
	ADDQ $32, SI
	DECQ CX
	JNZ  loop
done:
	STORE_LANES
	VMOVDQU Y11, L_BAD(DI)
	VZEROUPPER
	RET

// func simdLanesF16(p *byte, groups int, l *simdLanes, c *simdConsts)
TEXT ·simdLanesF16(SB), NOSPLIT, $0-32
	PROLOGUE
	VMOVDQU L_NONTINY(DI), Y11
	TESTQ CX, CX
	JZ   done
loop:
	CLEAN_STEP(SUMS_F16_MEM)
	ADDQ $32, SI
	DECQ CX
	JNZ  loop
done:
	STORE_LANES
	VMOVDQU Y11, L_NONTINY(DI)
	VZEROUPPER
	RET

// func simdLanesMaskedF16(p *byte, groups int, l *simdLanes, c *simdConsts)
TEXT ·simdLanesMaskedF16(SB), NOSPLIT, $0-32
	PROLOGUE
	VMOVDQU L_BAD(DI), Y11
	TESTQ CX, CX
	JZ   done
loop:
	MASKED_STEP(SUMS_F16)
	ADDQ $32, SI
	DECQ CX
	JNZ  loop
done:
	STORE_LANES
	VMOVDQU Y11, L_BAD(DI)
	VZEROUPPER
	RET

// func simdDevBF16(p *byte, groups int, pivot float64, l *simdLanes, c *simdConsts)
TEXT ·simdDevBF16(SB), NOSPLIT, $0-40
	DEV_PROLOGUE
	TESTQ CX, CX
	JZ   done
loop:
	DEV_BF16
	ADDQ $32, SI
	DECQ CX
	JNZ  loop
done:
	STORE_SUMS
	VZEROUPPER
	RET

// func simdDevF16(p *byte, groups int, pivot float64, l *simdLanes, c *simdConsts)
TEXT ·simdDevF16(SB), NOSPLIT, $0-40
	DEV_PROLOGUE
	TESTQ CX, CX
	JZ   done
loop:
	DEV_F16
	ADDQ $32, SI
	DECQ CX
	JNZ  loop
done:
	STORE_SUMS
	VZEROUPPER
	RET

// func simdLanesF32(p *byte, groups int, l *simdLanes32, c *simdConsts32)
TEXT ·simdLanesF32(SB), NOSPLIT, $0-32
	PROLOGUE32
	VMOVDQU L_NONTINY(DI), Y11
	TESTQ CX, CX
	JZ   done
loop:
	HALF32(0, Y0, Y4, Y1, Y5)
	HALF32(32, Y2, Y6, Y3, Y7)
	ADDQ $64, SI
	DECQ CX
	JNZ  loop
done:
	STORE_LANES
	VMOVDQU Y11, L_NONTINY(DI)
	VZEROUPPER
	RET

// func simdLanesMaskedF32(p *byte, groups int, l *simdLanes32, c *simdConsts32)
TEXT ·simdLanesMaskedF32(SB), NOSPLIT, $0-32
	PROLOGUE32
	VMOVDQU L_BAD(DI), Y11
	TESTQ CX, CX
	JZ   done
loop:
	HALF32_MASKED(0, Y0, Y4, Y1, Y5)
	HALF32_MASKED(32, Y2, Y6, Y3, Y7)
	ADDQ $64, SI
	DECQ CX
	JNZ  loop
done:
	STORE_LANES
	VMOVDQU Y11, L_BAD(DI)
	VZEROUPPER
	RET

// func simdDevF32(p *byte, groups int, pivot float64, l *simdLanes32, c *simdConsts32)
TEXT ·simdDevF32(SB), NOSPLIT, $0-40
	DEV_PROLOGUE
	TESTQ CX, CX
	JZ   done
loop:
	DEV32(0, Y0, Y4)
	DEV32(16, Y1, Y5)
	DEV32(32, Y2, Y6)
	DEV32(48, Y3, Y7)
	ADDQ $64, SI
	DECQ CX
	JNZ  loop
done:
	STORE_SUMS
	VZEROUPPER
	RET

