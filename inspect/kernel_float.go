package inspect

import (
	"encoding/binary"
	"math"

	"github.com/ckpt-tool/ckpt/formats"
)

// The F32 and F64 kernels work a block at a time, in short loops the compiler
// keeps in registers (measured: unrolling them by hand makes Go spill and run
// slower). The first loop decodes into the block buffer and folds the exponent
// bits of every element into two flags without a branch: any exponent all
// ones (a NaN or an infinity), any exponent all zeros (a zero or a
// subnormal). A block with a NaN or an infinity goes, already decoded, to
// foldBlock; the others to finishBlock.

// decodeF32 decodes a block of F32 data into v and says whether any value is
// non-finite, and whether any is zero or subnormal.
func decodeF32(blk []byte, v []float64) (nonFinite, tiny bool) {
	const expMask = 0x7F800000
	var hiFlag uint32
	loFlag := uint32(math.MaxUint32)
	blk = blk[:4*len(v)]
	for j := range v {
		w := binary.LittleEndian.Uint32(blk[4*j:])
		e := w & expMask
		hiFlag |= e + 0x00800000 // carries into bit 31 only from all ones
		loFlag &= e + expMask    // leaves bit 31 clear only from all zeros
		v[j] = float64(math.Float32frombits(w))
	}
	return hiFlag&0x80000000 != 0, loFlag&0x80000000 == 0
}

// decodeF64 is decodeF32 for F64 data.
func decodeF64(blk []byte, v []float64) (nonFinite, tiny bool) {
	const expMask, expOne = 0x7FF0000000000000, 0x0010000000000000
	var hiFlag uint64
	loFlag := uint64(math.MaxUint64)
	blk = blk[:8*len(v)]
	for j := range v {
		w := binary.LittleEndian.Uint64(blk[8*j:])
		e := w & expMask
		hiFlag |= e + expOne
		loFlag &= e + expMask
		v[j] = math.Float64frombits(w)
	}
	return hiFlag&(1<<63) != 0, loFlag&(1<<63) == 0
}

// statsF32 is the kernel for F32 data.
func statsF32(raw []byte, vals *[blockElems]float64) Acc {
	return statsIEEE(raw, 4, formats.F32.MinNormal(), decodeF32, vals)
}

// statsF64 is the kernel for F64 data.
func statsF64(raw []byte, vals *[blockElems]float64) Acc {
	return statsIEEE(raw, 8, formats.F64.MinNormal(), decodeF64, vals)
}

// statsIEEE folds IEEE data of size-byte elements a block at a time: decode
// widens a block into vals and says whether it holds a non-finite value (then
// the careful fold) or a zero or subnormal (then finishBlock counts them).
func statsIEEE(raw []byte, size int, minNormal float64, decode func([]byte, []float64) (bad, tiny bool), vals *[blockElems]float64) Acc {
	acc := NewAcc()
	n := len(raw) / size
	for i := 0; i < n; i += blockElems {
		m := min(blockElems, n-i)
		v := vals[:m]
		bad, tiny := decode(raw[size*i:size*(i+m)], v)
		var b Acc
		if bad {
			b = foldBlock(v, minNormal)
		} else {
			b = finishBlock(v, tiny, minNormal)
		}
		acc.Merge(&b)
	}
	return acc
}

// finishBlock computes the accumulator of a block of finite values: zeros and
// subnormals are counted only when tiny says there are some; one pass takes
// the sum, the sum of squares (two lanes each) and the extremes (behind
// branches that are rarely taken). The squared deviations follow as
// sumsq - sum²/n when that loses little (the values' mean is not large
// against their spread: M2 >= sumsq/2^12, so at most 12 bits of the 53
// cancel); otherwise a second pass adds the squared deviations from the mean.
func finishBlock(v []float64, tiny bool, minNormal float64) Acc {
	if len(v) == 0 {
		return NewAcc()
	}
	b := Acc{Count: uint64(len(v)), Finite: uint64(len(v)), FirstBad: -1}
	if tiny {
		// Branch-free on the magnitude bits: a-1 wraps (bit 63) only for a
		// zero, a-normal only below the smallest normal.
		normal := max(math.Float64bits(minNormal), 1)
		var zeros, small uint64
		for _, x := range v {
			a := math.Float64bits(x) &^ (1 << 63)
			zeros += (a - 1) >> 63
			small += (a - normal) >> 63
		}
		b.Zeros, b.Subnormal = zeros, small-zeros
	}
	sum, sq, lo, hi := sumSqMinMax(v)
	if b.Zeros > 0 {
		lo, hi = signedZeros(v, lo, hi)
	}
	b.Min, b.Max, b.AbsMax = lo, hi, math.Max(-lo, hi)
	n := float64(len(v))
	mean := sum / n
	b.Mean, b.SumSq = mean, sq
	if m2 := sq - sum*mean; m2 >= sq*(1.0/4096) {
		b.M2 = m2
		return b
	}
	var m0, m1 float64
	j := 0
	for ; j+2 <= len(v); j += 2 {
		d0, d1 := v[j]-mean, v[j+1]-mean
		m0 += d0 * d0
		m1 += d1 * d1
	}
	if j < len(v) {
		d := v[j] - mean
		m0 += d * d
	}
	b.M2 = m0 + m1
	return b
}

// sumSqMinMax returns the sum, the sum of squares and the extremes of finite
// values (a zero extreme's sign is not settled: see signedZeros).
func sumSqMinMax(v []float64) (sum, sq, lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	var s0, s1, q0, q1 float64
	j := 0
	for ; j+2 <= len(v); j += 2 {
		a, b := v[j], v[j+1]
		s0 += a
		s1 += b
		q0 += a * a
		q1 += b * b
		if a < lo {
			lo = a
		}
		if a > hi {
			hi = a
		}
		if b < lo {
			lo = b
		}
		if b > hi {
			hi = b
		}
	}
	if j < len(v) {
		x := v[j]
		s0 += x
		q0 += x * x
		lo, hi = min(lo, x), max(hi, x)
	}
	return s0 + s1, q0 + q1, lo, hi
}

// signedZeros settles the sign of an extreme that is zero, which comparisons
// cannot see: the minimum is -0 when a -0 occurs (as math.Min has it), the
// maximum +0 when a +0 occurs.
func signedZeros(v []float64, lo, hi float64) (float64, float64) {
	if lo != 0 && hi != 0 {
		return lo, hi
	}
	neg, pos := false, false
	for _, f := range v {
		if f == 0 {
			if math.Signbit(f) {
				neg = true
			} else {
				pos = true
			}
		}
	}
	negZero := math.Copysign(0, -1)
	if lo == 0 {
		lo = 0
		if neg {
			lo = negZero
		}
	}
	if hi == 0 {
		hi = negZero
		if pos {
			hi = 0
		}
	}
	return lo, hi
}
