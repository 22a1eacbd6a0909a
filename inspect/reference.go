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
func ReferenceStats(dt formats.DType, data []byte) Acc {
	acc := NewAcc()
	n := elementCount(dt, len(data))
	minNormal := dt.MinNormal()
	vals := make([]float64, 0, refBlock)
	flush := func() {
		b := NewAcc()
		var sum float64
		for _, v := range vals {
			sum += v
		}
		if len(vals) > 0 {
			b.Finite = uint64(len(vals))
			b.Mean = sum / float64(len(vals))
			for _, v := range vals {
				d := v - b.Mean
				b.M2 += d * d
				b.SumSq += v * v
				b.Min = math.Min(b.Min, v)
				b.Max = math.Max(b.Max, v)
				b.AbsMax = math.Max(b.AbsMax, math.Abs(v))
			}
		}
		acc.Merge(&b) // b counts no elements: only its finite statistics are folded in
		vals = vals[:0]
	}
	for i := 0; i < n; i++ {
		v := formats.Element(dt, data, i)
		acc.Count++
		switch formats.Classify(v) {
		case formats.ClassNaN:
			acc.NaN++
		case formats.ClassPosInf:
			acc.PosInf++
		case formats.ClassNegInf:
			acc.NegInf++
		default:
			if v == 0 {
				acc.Zeros++
			} else if math.Abs(v) < minNormal {
				acc.Subnormal++
			}
			vals = append(vals, v)
			if len(vals) == refBlock {
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

// elementCount is how many scalar values raw data of a dtype holds (C64 counts
// its real and imaginary F32 halves separately).
func elementCount(dt formats.DType, nbytes int) int {
	if dt == formats.C64 {
		return nbytes / 4
	}
	return nbytes * 8 / dt.Bits()
}
