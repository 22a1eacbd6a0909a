//go:build amd64 && !noasm

// AVX2 + FMA loops of the comparison kernels (see kernel_simd.go).
//
// Each iteration takes one group of 8 pairs: it loads the 8 elements of each
// side, stops (returning the groups folded so far) when either side holds a
// NaN or an infinity (exponent bits all set), widens both sides to float32
// and then, four at a time, to float64, and folds them into the lanes:
// elements 0-3 of the group into the first four float64 lanes of each sum
// (Y0-Y3) and of max (Y8), elements 4-7 into the last four (Y4-Y7, Y11).
// With x and y the values of A and B and d = y - x:
//   ssa = fma(x, x, ssa), ssb = fma(y, y, ssb), dot = fma(x, y, dot),
//   ssd = fma(d, d, ssd), max = max(max, |d|), same += (|d| == 0).
// Two max registers, not one: a single chain of VMAXPD, two per group, was
// the loop's critical path (measured twice as slow as the sums alone).
// The Go twin diffGroupsGo does the same operations on the same lanes.

#include "textflag.h"

// diffLanes offsets.
#define L_SSA 0
#define L_SSB 64
#define L_SSD 128
#define L_DOT 192
#define L_MAX 256
#define L_SAME 320

// The exponent masks: a 16-bit or 32-bit pattern with all of them set is a
// NaN or an infinity.
DATA expBF16<>+0(SB)/8, $0x7F807F807F807F80
DATA expBF16<>+8(SB)/8, $0x7F807F807F807F80
GLOBL expBF16<>(SB), RODATA|NOPTR, $16
DATA expF16<>+0(SB)/8, $0x7C007C007C007C00
DATA expF16<>+8(SB)/8, $0x7C007C007C007C00
GLOBL expF16<>(SB), RODATA|NOPTR, $16
DATA expF32<>+0(SB)/8, $0x7F8000007F800000
DATA expF32<>+8(SB)/8, $0x7F8000007F800000
DATA expF32<>+16(SB)/8, $0x7F8000007F800000
DATA expF32<>+24(SB)/8, $0x7F8000007F800000
GLOBL expF32<>(SB), RODATA|NOPTR, $32

// Registers: Y0-Y3 ssa, ssb, ssd, dot of elements 0-3; Y4-Y7 those of
// elements 4-7; Y8 and Y11 max of elements 0-3 and 4-7; Y9 same; Y10 the
// float64 magnitude mask; Y12 A's and Y13 B's float32 values; Y14, Y15 scratch.
// SI A, DX B, CX groups left, R9 groups asked, DI lanes.

#define PROLOGUE \
	MOVQ a+0(FP), SI \
	MOVQ b+8(FP), DX \
	MOVQ groups+16(FP), CX \
	MOVQ l+24(FP), DI \
	MOVQ CX, R9 \
	VMOVUPD L_SSA+0(DI), Y0 \
	VMOVUPD L_SSB+0(DI), Y1 \
	VMOVUPD L_SSD+0(DI), Y2 \
	VMOVUPD L_DOT+0(DI), Y3 \
	VMOVUPD L_SSA+32(DI), Y4 \
	VMOVUPD L_SSB+32(DI), Y5 \
	VMOVUPD L_SSD+32(DI), Y6 \
	VMOVUPD L_DOT+32(DI), Y7 \
	VMOVUPD L_MAX(DI), Y8 \
	VMOVUPD L_MAX+32(DI), Y11 \
	VMOVDQU L_SAME(DI), Y9 \
	VPCMPEQQ Y10, Y10, Y10 \
	VPSRLQ $1, Y10, Y10

#define EPILOGUE \
	VMOVUPD Y0, L_SSA+0(DI) \
	VMOVUPD Y1, L_SSB+0(DI) \
	VMOVUPD Y2, L_SSD+0(DI) \
	VMOVUPD Y3, L_DOT+0(DI) \
	VMOVUPD Y4, L_SSA+32(DI) \
	VMOVUPD Y5, L_SSB+32(DI) \
	VMOVUPD Y6, L_SSD+32(DI) \
	VMOVUPD Y7, L_DOT+32(DI) \
	VMOVUPD Y8, L_MAX(DI) \
	VMOVUPD Y11, L_MAX+32(DI) \
	VMOVDQU Y9, L_SAME(DI) \
	SUBQ CX, R9 \
	MOVQ R9, ret+32(FP) \
	VZEROUPPER \
	RET

// FOLD4 folds the four float32 pairs in X12 (A) and X13 (B) into the sums
// SA, SB, SD, DT and the maximum MX.
#define FOLD4(SA, SB, SD, DT, MX) \
	VCVTPS2PD X12, Y14 \
	VCVTPS2PD X13, Y15 \
	VFMADD231PD Y14, Y14, SA \
	VFMADD231PD Y15, Y15, SB \
	VFMADD231PD Y14, Y15, DT \
	VSUBPD Y14, Y15, Y15 \
	VFMADD231PD Y15, Y15, SD \
	VANDPD Y10, Y15, Y14 \
	VMAXPD Y14, MX, MX \
	VPXOR Y15, Y15, Y15 \
	VPCMPEQQ Y15, Y14, Y14 \
	VPSUBQ Y14, Y9, Y9

// FOLD8 folds the eight float32 pairs in Y12 (A) and Y13 (B).
#define FOLD8 \
	FOLD4(Y0, Y1, Y2, Y3, Y8) \
	VEXTRACTF128 $1, Y12, X12 \
	VEXTRACTF128 $1, Y13, X13 \
	FOLD4(Y4, Y5, Y6, Y7, Y11)

// CHECK16 loads 8 16-bit patterns of each side into X12 and X13 and sets
// the flags to NZ when one has all the exponent bits of MASK set.
#define CHECK16(MASK) \
	VMOVDQU (SI), X12 \
	VMOVDQU (DX), X13 \
	VPAND MASK, X12, X14 \
	VPCMPEQW MASK, X14, X14 \
	VPAND MASK, X13, X15 \
	VPCMPEQW MASK, X15, X15 \
	VPOR X14, X15, X14 \
	VPTEST X14, X14

// LOOP16 is the body of a 16-bit loop: MASK the exponent mask, WIDEN the
// widening of the patterns in X12 and X13 to float32 in Y12 and Y13.
#define LOOP16(MASK, WIDEN) \
	PROLOGUE \
	TESTQ CX, CX \
	JZ done \
loop: \
	CHECK16(MASK) \
	JNZ done \
	WIDEN \
	FOLD8 \
	ADDQ $16, SI \
	ADDQ $16, DX \
	DECQ CX \
	JNZ loop \
done: \
	EPILOGUE

// A BF16 pattern in the high half of a 32-bit lane is its float32.
#define WIDEN_BF16 \
	VPMOVZXWD X12, Y12 \
	VPSLLD $16, Y12, Y12 \
	VPMOVZXWD X13, Y13 \
	VPSLLD $16, Y13, Y13

// F16C converts every binary16 value exactly, subnormals included.
#define WIDEN_F16 \
	VCVTPH2PS X12, Y12 \
	VCVTPH2PS X13, Y13

// func diffGroupsBF16(a, b *byte, groups int, l *diffLanes) int
TEXT ·diffGroupsBF16(SB), NOSPLIT, $0-40
	LOOP16(expBF16<>(SB), WIDEN_BF16)

// func diffGroupsF16(a, b *byte, groups int, l *diffLanes) int
TEXT ·diffGroupsF16(SB), NOSPLIT, $0-40
	LOOP16(expF16<>(SB), WIDEN_F16)

// func diffGroupsF32(a, b *byte, groups int, l *diffLanes) int
TEXT ·diffGroupsF32(SB), NOSPLIT, $0-40
	PROLOGUE
	TESTQ CX, CX
	JZ f32done

f32loop:
	VMOVDQU (SI), Y12
	VMOVDQU (DX), Y13
	VPAND expF32<>(SB), Y12, Y14
	VPCMPEQD expF32<>(SB), Y14, Y14
	VPAND expF32<>(SB), Y13, Y15
	VPCMPEQD expF32<>(SB), Y15, Y15
	VPOR Y14, Y15, Y14
	VPTEST Y14, Y14
	JNZ f32done
	FOLD8
	ADDQ $32, SI
	ADDQ $32, DX
	DECQ CX
	JNZ f32loop

f32done:
	EPILOGUE

// The narrow loops (kernel_narrow.go): BF16 and F16 pairs folded in float32
// lanes, 16 pairs (two groups of 8) per iteration, carried into the float64 lanes
// of the diffLanes every N_CARRY iterations and when the loop stops.
//
// Registers: Y0-Y3 ssa, ssb, ssd, dot of the first group of each iteration
// (chain 0), Y4-Y7 those of the second (chain 1), all float32; Y8 and Y9
// max |B-A| of chains 0 and 1; Y10 the count of equal pairs (int32 lanes);
// Y11 zero; Y12-Y15 scratch. SI A, DX B, CX groups
// left, R9 groups asked, DI lanes, R8 iterations left before a carry.

#define N_CARRY 8

// The 16-bit range checks: a magnitude (pattern & 0x7FFF) above N_HI is out
// of range (for BF16 2^50 and beyond, NaN and infinities; for F16 NaN and
// infinities). For BF16, a nonzero magnitude below 0x2680 (2^-50) is out of
// range too: with t = magnitude + 0x7FFF (mod 2^16), which maps 0 to 0x7FFF
// and 1..0x267F to 0x8000..0xA67E, exactly when t < 0xA67F as int16.
DATA abs16<>+0(SB)/8, $0x7FFF7FFF7FFF7FFF
DATA abs16<>+8(SB)/8, $0x7FFF7FFF7FFF7FFF
DATA abs16<>+16(SB)/8, $0x7FFF7FFF7FFF7FFF
DATA abs16<>+24(SB)/8, $0x7FFF7FFF7FFF7FFF
GLOBL abs16<>(SB), RODATA|NOPTR, $32
DATA hiBF16<>+0(SB)/8, $0x587F587F587F587F
DATA hiBF16<>+8(SB)/8, $0x587F587F587F587F
DATA hiBF16<>+16(SB)/8, $0x587F587F587F587F
DATA hiBF16<>+24(SB)/8, $0x587F587F587F587F
GLOBL hiBF16<>(SB), RODATA|NOPTR, $32
DATA loBF16<>+0(SB)/8, $0xA67FA67FA67FA67F
DATA loBF16<>+8(SB)/8, $0xA67FA67FA67FA67F
DATA loBF16<>+16(SB)/8, $0xA67FA67FA67FA67F
DATA loBF16<>+24(SB)/8, $0xA67FA67FA67FA67F
GLOBL loBF16<>(SB), RODATA|NOPTR, $32
DATA hiF16<>+0(SB)/8, $0x7BFF7BFF7BFF7BFF
DATA hiF16<>+8(SB)/8, $0x7BFF7BFF7BFF7BFF
DATA hiF16<>+16(SB)/8, $0x7BFF7BFF7BFF7BFF
DATA hiF16<>+24(SB)/8, $0x7BFF7BFF7BFF7BFF
GLOBL hiF16<>(SB), RODATA|NOPTR, $32
DATA absF32<>+0(SB)/8, $0x7FFFFFFF7FFFFFFF
DATA absF32<>+8(SB)/8, $0x7FFFFFFF7FFFFFFF
DATA absF32<>+16(SB)/8, $0x7FFFFFFF7FFFFFFF
DATA absF32<>+24(SB)/8, $0x7FFFFFFF7FFFFFFF
GLOBL absF32<>(SB), RODATA|NOPTR, $32

#define NPROLOGUE \
	MOVQ a+0(FP), SI \
	MOVQ b+8(FP), DX \
	MOVQ groups+16(FP), CX \
	MOVQ l+24(FP), DI \
	MOVQ CX, R9 \
	MOVQ $N_CARRY, R8 \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y2, Y2, Y2 \
	VXORPS Y3, Y3, Y3 \
	VXORPS Y4, Y4, Y4 \
	VXORPS Y5, Y5, Y5 \
	VXORPS Y6, Y6, Y6 \
	VXORPS Y7, Y7, Y7 \
	VXORPS Y8, Y8, Y8 \
	VXORPS Y9, Y9, Y9 \
	VPXOR Y10, Y10, Y10 \
	VPXOR Y11, Y11, Y11

// NCARRY1 adds the eight float32 lanes of R (X its low half) to the float64
// lanes at OFF and OFF+32 of the diffLanes.
#define NCARRY1(R, X, OFF, OFF2) \
	VCVTPS2PD X, Y14 \
	VADDPD OFF(DI), Y14, Y14 \
	VMOVUPD Y14, OFF(DI) \
	VEXTRACTF128 $1, R, X15 \
	VCVTPS2PD X15, Y15 \
	VADDPD OFF2(DI), Y15, Y15 \
	VMOVUPD Y15, OFF2(DI)

// NCARRY adds chain 1 to chain 0, carries the sums and the count of equal
// pairs into the diffLanes (lane k of the count into lane k mod 4), and
// starts the float32 lanes and the count again from zero.
#define NCARRY \
	VADDPS Y4, Y0, Y0 \
	VADDPS Y5, Y1, Y1 \
	VADDPS Y6, Y2, Y2 \
	VADDPS Y7, Y3, Y3 \
	NCARRY1(Y0, X0, L_SSA, L_SSA+32) \
	NCARRY1(Y1, X1, L_SSB, L_SSB+32) \
	NCARRY1(Y2, X2, L_SSD, L_SSD+32) \
	NCARRY1(Y3, X3, L_DOT, L_DOT+32) \
	VPMOVZXDQ X10, Y14 \
	VPADDQ L_SAME(DI), Y14, Y14 \
	VEXTRACTI128 $1, Y10, X15 \
	VPMOVZXDQ X15, Y15 \
	VPADDQ Y15, Y14, Y14 \
	VMOVDQU Y14, L_SAME(DI) \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y2, Y2, Y2 \
	VXORPS Y3, Y3, Y3 \
	VXORPS Y4, Y4, Y4 \
	VXORPS Y5, Y5, Y5 \
	VXORPS Y6, Y6, Y6 \
	VXORPS Y7, Y7, Y7 \
	VPXOR Y10, Y10, Y10

// NEPILOGUE carries what is left, the maxima of both chains, and returns the
// groups folded.
#define NEPILOGUE \
	NCARRY \
	VMAXPS Y9, Y8, Y8 \
	VCVTPS2PD X8, Y14 \
	VMAXPD L_MAX(DI), Y14, Y14 \
	VMOVUPD Y14, L_MAX(DI) \
	VEXTRACTF128 $1, Y8, X15 \
	VCVTPS2PD X15, Y15 \
	VMAXPD L_MAX+32(DI), Y15, Y15 \
	VMOVUPD Y15, L_MAX+32(DI) \
	SUBQ CX, R9 \
	MOVQ R9, ret+32(FP) \
	VZEROUPPER \
	RET

// NFOLD folds the float32 group in Y12 (A) and Y13 (B) into the sums S_A, S_B,
// S_D, D_T and the maximum M_X of one chain, and the count Y10.
#define NFOLD(S_A, S_B, S_D, D_T, M_X) \
	VFMADD231PS Y12, Y12, S_A \
	VFMADD231PS Y13, Y13, S_B \
	VFMADD231PS Y12, Y13, D_T \
	VCMPPS $0, Y12, Y13, Y14 \
	VPSUBD Y14, Y10, Y10 \
	VSUBPS Y12, Y13, Y13 \
	VFMADD231PS Y13, Y13, S_D \
	VANDPS absF32<>(SB), Y13, Y13 \
	VMAXPS Y13, M_X, M_X

// NCHECK_BF16 sets the flags to NZ when one of the 16 BF16 patterns of
// either side at SI and DX is out of the narrow range.
#define NCHECK_BF16 \
	VMOVDQU (SI), Y12 \
	VMOVDQU (DX), Y13 \
	VPAND abs16<>(SB), Y12, Y12 \
	VPAND abs16<>(SB), Y13, Y13 \
	VPMAXSW Y12, Y13, Y14 \
	VPCMPGTW hiBF16<>(SB), Y14, Y14 \
	VPADDW abs16<>(SB), Y12, Y12 \
	VPADDW abs16<>(SB), Y13, Y13 \
	VPMINSW Y12, Y13, Y12 \
	VMOVDQU loBF16<>(SB), Y15 \
	VPCMPGTW Y12, Y15, Y15 \
	VPOR Y14, Y15, Y15 \
	VPTEST Y15, Y15

// NCHECK_F16 is NCHECK_BF16 for F16: out of range means NaN or infinity.
#define NCHECK_F16 \
	VMOVDQU (SI), Y12 \
	VMOVDQU (DX), Y13 \
	VPAND abs16<>(SB), Y12, Y12 \
	VPAND abs16<>(SB), Y13, Y13 \
	VPMAXSW Y12, Y13, Y14 \
	VPCMPGTW hiF16<>(SB), Y14, Y14 \
	VPTEST Y14, Y14

// NWIDEN_BF16 widens the 16 BF16 patterns of each side at SI and DX to
// float32: a pattern in the high half of a 32-bit lane, under a zero (Y11),
// is its float32. VPUNPCKLWD and VPUNPCKHWD work within each 128-bit half:
// for C = 0 (L) Y12 and Y13 receive elements 0-3 and 8-11, for C = 1 (H)
// elements 4-7 and 12-15. NWIDEN_F16 widens the first (C = 0) or second
// (C = 1) group of 8 F16 patterns.
#define NWIDEN_BF16_0 \
	VPUNPCKLWD (SI), Y11, Y12 \
	VPUNPCKLWD (DX), Y11, Y13

#define NWIDEN_BF16_1 \
	VPUNPCKHWD (SI), Y11, Y12 \
	VPUNPCKHWD (DX), Y11, Y13

#define NWIDEN_F16_0 \
	VCVTPH2PS (SI), Y12 \
	VCVTPH2PS (DX), Y13

#define NWIDEN_F16_1 \
	VCVTPH2PS 16(SI), Y12 \
	VCVTPH2PS 16(DX), Y13

// NSTOP_BF16 and NSTOP_F16 leave the loop before an iteration holding a
// value out of the narrow range; NSTOP_NONE, for runs whose every value is
// known to be in range (narrowRange16), checks nothing.
#define NSTOP_BF16 \
	NCHECK_BF16 \
	JNZ ndone

#define NSTOP_F16 \
	NCHECK_F16 \
	JNZ ndone

#define NSTOP_NONE

// NLOOP is the body of a narrow loop: the same folds in the same lanes,
// whatever STOP checks.
#define NLOOP(STOP, WIDEN0, WIDEN1) \
	NPROLOGUE \
	CMPQ CX, $2 \
	JLT ndone \
nloop: \
	STOP \
	WIDEN0 \
	NFOLD(Y0, Y1, Y2, Y3, Y8) \
	WIDEN1 \
	NFOLD(Y4, Y5, Y6, Y7, Y9) \
	ADDQ $32, SI \
	ADDQ $32, DX \
	SUBQ $2, CX \
	DECQ R8 \
	JNZ nnext \
	NCARRY \
	MOVQ $N_CARRY, R8 \
nnext: \
	CMPQ CX, $2 \
	JGE nloop \
ndone: \
	NEPILOGUE

// func diffNarrowBF16(a, b *byte, groups int, l *diffLanes) int
TEXT ·diffNarrowBF16(SB), NOSPLIT, $0-40
	NLOOP(NSTOP_BF16, NWIDEN_BF16_0, NWIDEN_BF16_1)

// func diffNarrowF16(a, b *byte, groups int, l *diffLanes) int
TEXT ·diffNarrowF16(SB), NOSPLIT, $0-40
	NLOOP(NSTOP_F16, NWIDEN_F16_0, NWIDEN_F16_1)

// func diffNarrowInBF16(a, b *byte, groups int, l *diffLanes) int
TEXT ·diffNarrowInBF16(SB), NOSPLIT, $0-40
	NLOOP(NSTOP_NONE, NWIDEN_BF16_0, NWIDEN_BF16_1)

// The range pass (narrowRange16): the largest magnitude (Y0) and the
// smallest magnitude + 0x7FFF as int16 (Y1, the lower check of NCHECK_BF16)
// of 32 patterns per iteration, two vectors of 16, kept in two pairs of
// chains (Y0, Y1 and Y6, Y7); compared with HI (Y4) and LO (Y5) at the end.
// (LO = 0x8000, the least int16, would check no lower bound.)

// func narrowRange16(p *byte, blocks int, hi, lo uint64) bool
TEXT ·narrowRange16(SB), NOSPLIT, $0-33
	MOVQ p+0(FP), SI
	MOVQ blocks+8(FP), CX
	MOVQ hi+16(FP), AX
	VMOVQ AX, X4
	VPBROADCASTW X4, Y4
	MOVQ lo+24(FP), AX
	VMOVQ AX, X5
	VPBROADCASTW X5, Y5
	VMOVDQU abs16<>(SB), Y3
	VPXOR Y0, Y0, Y0
	VPXOR Y6, Y6, Y6
	VMOVDQU Y3, Y1
	VMOVDQU Y3, Y7
	TESTQ CX, CX
	JZ rdone

rloop:
	VPAND (SI), Y3, Y2
	VPAND 32(SI), Y3, Y8
	VPMAXSW Y2, Y0, Y0
	VPMAXSW Y8, Y6, Y6
	VPADDW Y3, Y2, Y2
	VPADDW Y3, Y8, Y8
	VPMINSW Y2, Y1, Y1
	VPMINSW Y8, Y7, Y7
	ADDQ $64, SI
	DECQ CX
	JNZ rloop

rdone:
	VPMAXSW Y6, Y0, Y0
	VPMINSW Y7, Y1, Y1
	VPCMPGTW Y4, Y0, Y0
	VPCMPGTW Y1, Y5, Y1
	VPOR Y0, Y1, Y0
	VPTEST Y0, Y0
	SETEQ ret+32(FP)
	VZEROUPPER
	RET
