package inspect

import (
	"math"

	"github.com/ckpt-tool/ckpt/formats"
)

// The vector kernels for BF16, F16 and F32 (and through it C64, whose parts
// are F32: see statsComplex).
// Where the CPU has the instructions (see kernel_simd_amd64.go), a block of
// up to simdBlockElems elements is folded 16 at a time by an assembly loop
// into lanes: per element position, exact counts (zeros, magnitudes of at
// least the smallest normal, and on the masked pass NaN and infinities) and
// order keys of the extremes; per float64 lane, the sum and the sum of
// squares of the values widened exactly to float64. Go then reduces the lanes
// in a fixed order into the block's Acc, and the blocks are merged in order,
// so the result depends only on the data, never on where it sits in memory
// or on the number of workers.
//
// A block is first folded on the assumption that it is all finite; the keys
// say afterwards whether it was (a NaN or an infinity has a key beyond every
// finite one), and only a block that was not is folded again by the masked
// loop, which counts the non-finite elements and keeps them out of the sums
// and the extremes.
//
// The sums are taken around zero, which gives the sum of squares for the L2
// norm directly; the squared deviations follow as sumsq - sum·mean when that
// cancels at most 10 of the 53 bits (the mean is not large against the
// spread), and otherwise from a second pass over the block, still in the
// cache, around the first pass's mean. Each float64 lane adds at most
// simdBlockElems/16 terms, so the sums are within 2048·2⁻⁵³ of exact and the
// deviations within 2¹⁰ times that: inside 1e-9.
//
// BF16 and F16 blocks are first folded by the narrow loops instead, which
// keep the sums of x and x² in float32 lanes (eight vectors of them, so that
// no addition waits for the previous one) and add them to float64 lanes
// every narrowPairs pairs of groups; their extremes are on the raw patterns
// (see narrowTotals), and instead of counting zeros and subnormals they keep
// the smallest magnitude: only a block where that is below the smallest
// normal is counted, by a second, integer-only loop (simdCount16). A block
// that follows one holding zeros or subnormals (and the first F16 block: see
// countsFirst) goes instead to their counting variant, which counts as it
// folds and gives the same sums. A block they leave out of their range (BF16
// beyond 2⁶⁰, or with nothing above 2⁻⁴⁰ but zeros), whose values all have
// one sign (its extremes are then not known), or that holds a NaN or an
// infinity, is folded again by the float64 loops. What the float32 sums cost
// in accuracy, and why it is within the promise:
//
// Let u = 2⁻²⁴ and K = narrowPairs. A float32 lane adds K terms of a run to
// +0, then the four lanes of a position pair are added two by two: each
// term goes through at most K + 1 roundings, so the run's sum is within
// γ = (K+1)u/(1-(K+1)u) of the sum of the terms' magnitudes (Higham,
// Accuracy and Stability of Numerical Algorithms, §4.2). The terms are
// exact: BF16 and F16 widen to float32 exactly, and the square of a value
// with 8 (BF16) or 11 (F16) significant bits has at most 22, which float32
// holds; VFMADD231PS rounds x² + acc once. Additions with a subnormal result
// are exact, and a fused square whose result is below 2⁻¹²⁶ errs by at most
// 2⁻¹⁵⁰: with the block's largest magnitude at least 2⁻⁴⁰ (BF16; F16 squares
// never go below 2⁻⁴⁸) that is within 2¹⁵·2⁻¹⁵⁰ ≤ 2⁻⁵⁵ of the block's sum of
// squares. The float64 lanes take at most simdBlockElems/(32K) runs each and
// the reduction adds 16 lanes, so (widening is exact) they add less than
// 2⁻⁴⁴ relative. For K = 8, with ε = γ + 2⁻⁴⁴ < 5.4e-7 and a block of n
// finite values x of mean μ, standard deviation σ and root mean square
// r = √(μ² + σ²):
//
//   - the sum of squares Q is within ε·Q (all terms are ≥ 0): the L2 norm
//     within ε/2 < 2.7e-7 relative;
//   - the sum S is within ε·Σ|x| ≤ ε·n·r, so the mean within ε·r;
//   - M2 = Q - S·S/n is within ε·n·r² + 2ε·n·|μ|·r (+ O(ε²)). It is used
//     only when it is at least narrowM2Cancel = 7/8 of Q, that is σ² ≥
//     (7/8)·r² and |μ| ≤ r/√8; there it is within ε·(1 + 2/√8)/(7/8) <
//     1.96ε of itself, and the mean within ε·r ≤ √(8/7)·ε·σ < 1.07ε·σ.
//     Otherwise the second pass computes the mean and the deviations in
//     float64 around the first pass's mean, as for F32.
//
// Merging the blocks (Acc.Merge, in float64) adds the blocks' squared
// distances to the overall mean, n_b·(μ_b - μ)²; a block mean off by at most
// c·σ_b moves that term by at most 2n_b·|μ_b - μ|·c·σ_b ≤ c·n_b·((μ_b - μ)² +
// σ_b²), so the whole tensor's M2 stays within (1.96 + 1.07)ε·M2 < 1.7e-6
// relative. So for BF16 and F16, whatever the data: L2 within 2.7e-7
// relative, the standard deviation within 8.2e-7 relative, and the mean
// within 5.8e-7 of the standard deviation (the blocks whose mean is large
// against their spread take the second pass: their mean is far closer). The
// blocks that leave the narrow loops keep the float64 bounds below.
//
// F32 (and the parts of C64) has a narrow loop of its own (simdNarrowF32):
// 32 values per iteration, elements 0-7, 8-15, 16-23, 24-31 of the pair of
// groups in four float32 vectors of sums and four of squares, added up as
// (0-7 + 8-15) + (16-23 + 24-31) every K = narrow32Pairs iterations. The
// argument above holds with two changes. The square of a 24-bit value is
// not exact in float32, but inside VFMADD231PS it is not rounded by itself:
// x·x + acc is rounded once, the addition's rounding; only the first term of
// a run (acc = +0) is rounded where the BF16 one was exact. So a square goes
// through at most K + 2 roundings and a value through K + 1, and ε = γ(K+2)
// + 2⁻⁴⁴; for K = 4, ε < 3.58e-7. The range is checked on the block's
// largest magnitude as for BF16 (the loop keeps the raw extremes: see
// narrowTotals): 0 or in [2⁻⁴⁰, 2⁶⁰). Above, a run's sum of 4K squares stays
// below 2¹²⁵; below, a square under 2⁻¹²⁶ errs by at most 2⁻¹⁵⁰ (subnormal
// sums are exact), within 2¹⁵·2⁻¹⁵⁰ ≤ 2⁻⁵⁵ of the block's sum of squares,
// which is at least 2⁻⁸⁰; F32 values themselves may be subnormal (they are
// exact in float32). The float64 lanes take simdBlockElems/(32K) = 256 runs
// each: under 2⁻⁴⁴ with the reduction. With the same guard (7/8) and the
// same merge, for F32 and C64, whatever the data: L2 within 1.8e-7
// relative, the standard deviation within 5.5e-7 relative (M2 within
// 3.03ε < 1.1e-6), the mean within 3.9e-7 of the standard deviation. A
// block whose first narrowProbe values have a large mean (Adam's second
// moments, norms) goes to the float64 loop straight away (see largeMean),
// and ggml types dequantized to float32 keep the float64 loop (statsF32Wide).
//
// Every loop has a Go twin (simdLanesGo, simdNarrowGo, simdDevGo and their
// 32-bit versions, simdNarrow32Go) that assigns the elements to the same lanes in the same
// order and rounds the same way (math.FMA for the fused squares, fp32.FMA
// for the float32 ones): the tests
// require the two to agree to the bit, and the twin also folds the elements
// after the last whole group of 16. Where the CPU has AVX-512 (F and BW), the
// narrow and count loops run their AVX-512 versions (kernel_simd512_amd64.s),
// which leave the same lanes to the bit: the twins are theirs too. Without
// the instructions the dispatch falls back to the histogram (16-bit) and
// block (F32) kernels.

// simdBlockElems is how many elements one block of the vector kernels holds:
// few enough that a 16-bit lane counter cannot overflow (2048 per lane) and
// that the block is still in the L2 cache for a second pass.
const simdBlockElems = 32 << 10

// simdM2Cancel is the share of the sum of squares under which sumsq -
// sum·mean is not trusted for the squared deviations (2⁻¹⁰: at most 10 bits
// cancel) and a second pass around the mean computes them.
const simdM2Cancel = 1.0 / 1024

// narrowPairs is how many pairs of groups of 16 the narrow loops add into
// their float32 lanes between two additions to the float64 lanes: every
// term then goes through at most 9 float32 roundings (see above; the
// assembly's N_PAIRS).
const narrowPairs = 8

// narrow32Pairs is narrowPairs for the F32 narrow loop (the assembly's
// N_PAIRS32): its squares are rounded once more (see above).
const narrow32Pairs = 4

// narrowM2Cancel is the share of the sum of squares under which the narrow
// loops' sumsq - sum·mean is not trusted for the squared deviations (see
// above).
const narrowM2Cancel = 7.0 / 8

// vecKernel is the vector kernel of one element width: its assembly loops
// (or, for the tests and other CPUs, their Go twins alone) behind the
// operations the shared block logic needs.
type vecKernel interface {
	size() int // bytes per element
	// countsFirst says whether the first block of data is folded by the
	// narrow loops that count zeros and subnormals as they go; each later
	// block is when the one before it held some.
	countsFirst() bool
	// narrow folds a block with float32 sums (see narrowPairs) and reduces
	// the lanes; ok is false when the kernel has no such loops, or the
	// block is finite but outside the range where they keep the promise
	// (the caller then uses lanes). NaN and infinities are not kept out: the
	// caller checks the keys. counting chooses the loops that count zeros
	// and subnormals as they go (for a block expected to hold some) over
	// those that count them in a second pass when there are any; the
	// result is the same.
	narrow(blk []byte, counting bool) (t laneTotals, ok bool)
	// lanes folds a block (masked: counting NaN and infinities and keeping
	// them out of the rest) and reduces the lanes.
	lanes(blk []byte, masked bool) laneTotals
	// dev is the sum of x - pivot and of its square over the finite
	// elements of a block (hasBad: the block holds some that are not).
	dev(blk []byte, pivot float64, hasBad bool) (d, d2 float64)
	value(key int64) float64    // the value of an order key
	finiteKeys() (lo, hi int64) // the keys of the extreme finite values
	firstBad(blk []byte) int64  // index of the first NaN or infinity, -1 when none
}

// laneTotals are the lanes of one pass reduced in a fixed order.
type laneTotals struct {
	zeros, nontiny, bad, pinf, ninf uint64
	kmin, kmax                      int64 // order keys of the extremes
	sum, sq                         float64
}

// simdFor returns the vector kernel for dt when this CPU runs its assembly
// loops, folding into the lanes of sc (nil: new lanes every time).
func simdFor(dt formats.DType, sc *scratch) (vecKernel, bool) {
	var l16 *simdLanes
	var l32 *simdLanes32
	if sc != nil {
		l16, l32 = &sc.lanes16, &sc.lanes32
	}
	switch {
	case dt == formats.BF16 && simdBF16OK:
		return simd16{bf16SIMD, true, l16}, true
	case dt == formats.F16 && simdF16OK:
		return simd16{f16SIMD, true, l16}, true
	case dt == formats.F32 && simdF32OK:
		return simd32{true, l32}, true
	}
	return nil, false
}

// simdHandles reports whether a vector kernel serves dt on this CPU.
func simdHandles(dt formats.DType) bool {
	_, ok := simdFor(dt, nil)
	return ok
}

// statsSIMD computes the statistics of raw data of dt with the vector
// kernel, in the lanes of sc; ok is false (and the caller uses another
// kernel) when this CPU has none for dt.
func statsSIMD(dt formats.DType, raw []byte, sc *scratch) (acc Acc, ok bool) {
	k, ok := simdFor(dt, sc)
	if !ok {
		return Acc{}, false
	}
	return vecStats(k, raw), true
}

// vecStats folds raw data (a trailing partial element is ignored) block by block.
func vecStats(k vecKernel, raw []byte) Acc {
	acc := NewAcc()
	w := k.size()
	n := len(raw) / w
	counting := k.countsFirst()
	for i := 0; i < n; i += simdBlockElems {
		m := min(simdBlockElems, n-i)
		b := vecBlock(k, raw[w*i:w*(i+m)], acc.FirstBad < 0, counting)
		acc.Merge(&b)
		counting = b.Zeros+b.Subnormal > 0
	}
	return acc
}

// vecBlock computes the accumulator of one block (FirstBad only when
// wantFirstBad), with the narrow loops that count as they go when counting.
func vecBlock(k vecKernel, blk []byte, wantFirstBad, counting bool) Acc {
	n := uint64(len(blk) / k.size())
	t, narrow := k.narrow(blk, counting)
	if !narrow {
		t = k.lanes(blk, false)
	}
	if lo, hi := k.finiteKeys(); t.kmin < lo || t.kmax > hi {
		t, narrow = k.lanes(blk, true), false
	}
	b := NewAcc()
	b.Count, b.Zeros, b.Subnormal = n, t.zeros, n-t.nontiny-t.zeros
	b.NaN, b.PosInf, b.NegInf, b.Finite = t.bad-t.pinf-t.ninf, t.pinf, t.ninf, n-t.bad
	if t.bad > 0 && wantFirstBad {
		b.FirstBad = k.firstBad(blk)
	}
	if b.Finite == 0 {
		return b
	}
	b.Min, b.Max = k.value(t.kmin), k.value(t.kmax)
	b.AbsMax = math.Max(-b.Min, b.Max)
	fn := float64(b.Finite)
	mean := t.sum / fn
	b.SumSq = t.sq
	cancel := simdM2Cancel
	if narrow {
		cancel = narrowM2Cancel
	}
	if m2 := t.sq - t.sum*mean; m2 >= t.sq*cancel {
		b.Mean, b.M2 = mean, m2
		return b
	}
	// The mean is large against the spread: add the squared deviations
	// from the first pass's mean, and correct the mean by their sum.
	d, d2 := k.dev(blk, mean, t.bad > 0)
	b.Mean = mean + d/fn
	b.M2 = math.Max(0, d2-d*(d/fn))
	return b
}

// laneSums adds up float64 lanes in a fixed order.
func laneSums(sum, sq *[4][4]float64) (s, q float64) {
	for v := range 4 {
		for j := range 4 {
			s += sum[v][j]
			q += sq[v][j]
		}
	}
	return s, q
}
