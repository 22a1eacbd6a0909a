package inspect

import (
	"math"

	"github.com/ckpt-tool/ckpt/formats"
)

// refBlock is how many elements the reference folds at a time.
const refBlock = 4096

// ReferenceStats computes the statistics of raw tensor data the plain way: every
// element decoded by formats.Element into float64, each block of values summed
// in two passes, blocks merged in order. It is the twin every fast kernel is
// tested against; it is slow on purpose.
//
// An element of a complex dtype is one complex number: it is classified by
// formats.ClassifyComplex, it is zero when both parts are, subnormal when it is
// not zero and a nonzero part is below the smallest normal, and the statistics
// are over the real and imaginary parts of the finite elements (see Acc).
func ReferenceStats(dt formats.DType, data []byte) Acc {
	acc := NewAcc()
	parts := 1
	if dt.Kind() == formats.KindComplex {
		parts = 2
	}
	n := 0
	if dt.Valid() {
		n = formats.ElementCount(dt, len(data))
	}
	minNormal := dt.MinNormal()
	vals := make([]float64, 0, refBlock)
	flush := func() {
		b := NewAcc()
		var sum float64
		for _, v := range vals {
			sum += v
		}
		if len(vals) > 0 {
			b.Finite = uint64(len(vals) / parts)
			b.Mean = sum / float64(len(vals))
			for _, v := range vals {
				d := v - b.Mean
				b.M2 += d * d
				b.SumSq += v * v
				b.Min = math.Min(b.Min, v)
				b.Max = math.Max(b.Max, v)
				b.AbsMax = math.Max(b.AbsMax, math.Abs(v))
			}
			b.M2 /= float64(parts)
		}
		acc.Merge(&b) // b counts no elements: only its finite statistics are folded in
		vals = vals[:0]
	}
	var el [2]float64
	for i := 0; i < n; i++ {
		for p := range parts {
			el[p] = formats.Element(dt, data, parts*i+p)
		}
		class := formats.Classify(el[0])
		if parts == 2 {
			class = formats.ClassifyComplex(el[0], el[1])
		}
		acc.Count++
		switch class {
		case formats.ClassNaN:
			acc.NaN++
		case formats.ClassPosInf:
			acc.PosInf++
		case formats.ClassNegInf:
			acc.NegInf++
		default:
			zero, small := true, false
			for _, v := range el[:parts] {
				zero = zero && v == 0
				small = small || v != 0 && math.Abs(v) < minNormal
			}
			if zero {
				acc.Zeros++
			} else if small {
				acc.Subnormal++
			}
			vals = append(vals, el[:parts]...)
			if len(vals) >= refBlock {
				flush()
			}
			continue
		}
		if acc.FirstBad < 0 {
			acc.FirstBad = int64(i)
		}
	}
	flush()
	return acc
}

// partCount is how many scalar values raw data of a dtype holds: its elements,
// or for a complex dtype their real and imaginary parts.
func partCount(dt formats.DType, nbytes int) int {
	return nbytes * 8 / partBits(dt)
}

// partBits is the width of one scalar value: the element's, or for a complex
// dtype one part's.
func partBits(dt formats.DType) int { return dt.Part().Bits() }
