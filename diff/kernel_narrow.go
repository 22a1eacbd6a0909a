package diff

import (
	"encoding/binary"
	"math"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/fp32"
)

// The narrow comparison loops fold BF16 and F16 pairs in float32 lanes with
// a float64 carry, where kernel_simd.go's loops fold every group in float64.
// They take 16 pairs (two groups of 8) per iteration into two sets of eight
// float32 lanes (chains 0 and 1; narrowLane says which pair goes where),
// each lane folding, for its pair with x and y its values and d = y−x
// rounded to float32:
//
//	ssa += x·x, ssb += y·y, dot += x·y, ssd += d·d  (one VFMADD231PS each:
//	                                                  the product is exact
//	                                                  inside it, the sum
//	                                                  rounds once)
//	max = max(max, |d|), same += (x == y)            (+0 equals −0)
//
// Every narrowCarry iterations, and when the loop stops, the two chains are
// added together in float32 and carried into the float64 lanes of the
// diffLanes (float32 lane k into lane k, same into lane k mod 4), and the
// float32 lanes start again from zero. max is carried when the loop stops.
//
// A pair of groups goes to the narrow loop only when every value of both
// sides, on both groups, is in its range: for BF16 zero or a magnitude in
// [2⁻⁵⁰, 2⁵⁰), for F16 any finite value. Otherwise the loop stops before it
// and compareGroups gives the groups to the float64 loop (which stops in
// turn before a group holding a NaN or an infinity, for the plain path).
//
// Why the sums are within the bounds of narrowSumBound, narrowDiffBound and
// narrowDotBound (u = 2⁻²⁴, float32's unit roundoff):
//
//   - In range, every product is exact and normal or zero in float32, and so
//     is every sum of them short of overflow. BF16 values have 8 significant
//     bits, so x·x and x·y have at most 16; with |x|, |y| in [2⁻⁵⁰, 2⁵⁰) the
//     products lie in [2⁻¹⁰⁰, 2¹⁰⁰), far inside float32's normal range
//     [2⁻¹²⁶, 2¹²⁸). F16 values have 11 significant bits (22 in a product)
//     and magnitudes in [2⁻²⁴, 65504]: products lie in [2⁻⁴⁸, 2³²), normal
//     in float32. A carry adds up at most 2·narrowCarry = 16 terms, each
//     below 2¹⁰² (BF16, d² included: |d| < 2⁵¹) or 2³⁴ (F16, |d| < 2¹⁷): at
//     most 2¹⁰⁶ or 2³⁸, no overflow.
//   - d = y−x, rounded to float32, is within u|y−x| of it (round to nearest),
//     and exact whenever y−x fits 24 significant bits (the exponents of x and
//     y at most 16 apart for BF16, 13 for F16, or one of them zero). It is
//     zero only when x = y (float32 subtraction does not underflow to zero).
//     A nonzero |d| is at least the spacing of the smaller operand: 2⁻⁵⁷ for
//     BF16 in range (d² ≥ 2⁻¹¹⁴) and 2⁻²⁴ for F16 (d² ≥ 2⁻⁴⁸), at most 2⁵¹
//     (BF16) or 2¹⁷ (F16): d·d is normal too.
//   - Each VFMADD231PS rounds the exact p + acc once, with p a term: the
//     error is at most u times the result's magnitude, which for a sum of
//     terms is at most the sum of their magnitudes (a subnormal result of
//     two float32 values, possible in the dot product's cancellations, is
//     exact). A lane's first term is added to zero: exact for ssa, ssb and
//     dot (the product is a float32 value), one rounding for ssd. So, with
//     narrowCarry = 8 iterations per chain, a term of ssa, ssb or dot goes
//     through at most 7 roundings in its chain and one more where the chains
//     are added; a term of ssd through at most 9. The classic bound for a
//     sum whose every term goes through at most h roundings is
//     γ_h·Σ|t| with γ_h = h·u/(1−h·u): the carried partial of ssa, ssb and
//     dot is within γ_8·Σ|t| of the exact sum of its terms, that of ssd
//     within γ_9·Σd̂² of the sum of the rounded squares, and d̂² is within
//     (2u+u²)·d² of d²: within (γ_9 + (2u+u²)(1+γ_9))·Σd², under 11.01u.
//   - The float64 carries and everything after them (the lanes added up,
//     sub-blocks, chunks and tensors merged) add at most a relative 1e-12,
//     as for the float64 loops (a term goes through at most a few thousand
//     float64 additions, each within 2⁻⁵³).
//
// So: ‖A‖², ‖B‖² within 8.01u relative (4.8e-7) and ‖A‖, ‖B‖ within half
// that; ‖B−A‖² within 11.01u (6.6e-7), ‖B−A‖ within 5.51u; the dot product
// within 8.01u·Σ|x·y| ≤ 8.01u·‖A‖‖B‖ (Cauchy–Schwarz), absolutely. Hence
// the reported metrics: rel_l2 = ‖B−A‖/‖A‖ within 9.6u (5.7e-7) relative;
// cosine = A·B/(‖A‖‖B‖) within 16.1u (9.6e-7) absolutely (the dot product's
// 8.01u plus 8.01u for the two norms, times |cosine| ≤ 1). max |B−A| is the
// largest rounded d: exact when the pair that has it is exact, else within
// u relative (rounded to nearest). The counts (pairs, pairs that differ)
// are exact: x == y is exact.

// narrowCarry is how many iterations (pairs of groups) the narrow loops fold
// into their float32 lanes between two carries into float64. The assembly's
// N_CARRY must match (TestDiffAsmOffsets).
const narrowCarry = 8

// The proven bounds of the narrow loops (see above), with room for the
// float64 stages: relative for the sums of squares, relative to ‖A‖‖B‖ for
// the dot product, relative for max |B−A|.
const (
	narrowU         = 1.0 / (1 << 24)
	narrowSumBound  = 8.01*narrowU + 1e-12
	narrowDiffBound = 11.01*narrowU + 1e-12
	narrowDotBound  = 8.01*narrowU + 1e-12
	narrowMaxBound  = narrowU
)

// narrowInRange reports whether the 16-bit pattern p of dtype dt (BF16 or
// F16) may go to the narrow loops: for BF16 a zero or a magnitude in
// [2⁻⁵⁰, 2⁵⁰) (biased exponent 77..176), for F16 any finite value.
func narrowInRange(dt formats.DType, p uint16) bool {
	abs := p & 0x7FFF
	if dt == formats.F16 {
		return abs <= 0x7BFF
	}
	return abs == 0 || abs >= 77<<7 && abs < 177<<7
}

// narrowLane is the chain and lane of pair e (0..15) of an iteration of dt's
// narrow loop. F16 widens each group of 8 whole (VCVTPH2PS): group c into
// chain c, element k into lane k. BF16 widens the 16 patterns by unpacking
// them under zeros (VPUNPCKLWD, VPUNPCKHWD), which works within each 128-bit
// half: chain 0 gets pairs 0-3 and 8-11, chain 1 pairs 4-7 and 12-15. The
// AVX-512 loops (kernel_narrow512_amd64.s) hold both chains in one register
// and put the pairs in the same lanes (VPERMW), to the same bits.
func narrowLane(dt formats.DType, e int) (c, k int) {
	if dt == formats.F16 {
		return e >> 3, e & 7
	}
	return e >> 2 & 1, e&3 | e>>3<<2
}

// narrowValue is element i of raw data of dtype dt (BF16 or F16) in float32,
// which holds every such value exactly.
func narrowValue(dt formats.DType, raw []byte, i int) float32 {
	return float32(diffValue(dt, raw, i))
}

// diffNarrowGo is the Go twin of the narrow assembly loops, AVX2 and AVX-512,
// for dtype dt (BF16 or F16): every pair in the same lane, every operation
// rounded the same way, the carries at the same iterations.
func diffNarrowGo(dt formats.DType) groupFolder {
	return func(a, b []byte, groups int, l *diffLanes) int {
		var sum [2][4][8]float32 // chain; ssa, ssb, ssd, dot; lane
		var mx [2][8]float32
		var same [8]uint64
		carry := func() {
			for k := range 8 {
				l.ssa[k] += float64(sum[0][0][k] + sum[1][0][k])
				l.ssb[k] += float64(sum[0][1][k] + sum[1][1][k])
				l.ssd[k] += float64(sum[0][2][k] + sum[1][2][k])
				l.dot[k] += float64(sum[0][3][k] + sum[1][3][k])
				l.same[k%4] += same[k]
			}
			sum, same = [2][4][8]float32{}, [8]uint64{}
		}
		done, it := 0, 0
	groups:
		for groups-done >= 2 {
			base := 8 * done
			for k := base; k < base+16; k++ {
				if !narrowInRange(dt, binary.LittleEndian.Uint16(a[2*k:])) ||
					!narrowInRange(dt, binary.LittleEndian.Uint16(b[2*k:])) {
					break groups
				}
			}
			for e := range 16 {
				c, k := narrowLane(dt, e)
				s := &sum[c]
				{
					x, y := narrowValue(dt, a, base+e), narrowValue(dt, b, base+e)
					s[0][k] = fp32.FMA(x, x, s[0][k])
					s[1][k] = fp32.FMA(y, y, s[1][k])
					s[3][k] = fp32.FMA(x, y, s[3][k])
					if x == y {
						same[k]++
					}
					d := float32(y - x)
					s[2][k] = fp32.FMA(d, d, s[2][k])
					mx[c][k] = max(mx[c][k], float32(math.Abs(float64(d))))
				}
			}
			done += 2
			if it++; it == narrowCarry {
				carry()
				it = 0
			}
		}
		carry()
		for k := range 8 {
			l.max[k] = math.Max(l.max[k], float64(max(mx[0][k], mx[1][k])))
		}
		return done
	}
}

// narrowRangeGo reports whether every value of raw (dtype dt, BF16 or F16)
// is in the narrow range: the Go twin of the assembly range pass
// (narrowRange16).
func narrowRangeGo(dt formats.DType, raw []byte) bool {
	for i := 0; i+1 < len(raw); i += 2 {
		if !narrowInRange(dt, binary.LittleEndian.Uint16(raw[i:])) {
			return false
		}
	}
	return true
}

// narrowRangeOf returns the range pass for dt: whether a run of dt is wholly
// in the narrow range, so that a pair of such runs may take the narrow loop
// without its check (asmNarrowIn), which then folds exactly as the checking
// loop does on them. It is nil when there is no such loop (another dtype,
// CPU or architecture, -tags noasm): the range is then not worth knowing.
//
// A run is checked once and the answer kept with it: a piece of a series
// (CompareSeries) is B of one pair and A of the next, so its range is taken
// once for both, where the checking loop would check it on both sides of
// both pairs.
func narrowRangeOf(dt formats.DType) func(raw []byte) bool {
	return asmRange(dt)
}

// inNarrowRange reports whether raw (dtype dt) is wholly in the narrow range,
// where that lets the narrow loop go without its check (narrowRangeOf); it is
// false where it would not.
func inNarrowRange(dt formats.DType, raw []byte) bool {
	r := narrowRangeOf(dt)
	return r != nil && r(raw)
}
