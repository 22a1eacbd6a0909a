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
