package inspect

import (
	"math"

	"github.com/ckpt-tool/ckpt/formats"
)

// statsComplex is the kernel for the complex dtypes (C64, C128), where an
// element is one complex number. Their parts are first folded as one run of
// F32 (or F64) values by that dtype's fast kernel: when no part is NaN,
// infinite, zero or subnormal, the parts' accumulator is the elements' (half
// the count, half M2: see Acc). Otherwise each element has to be looked at
// whole (a NaN real part makes the element NaN, and its imaginary part is kept
// out of the statistics), which complexBlocks does a block at a time.
func (sc *scratch) statsComplex(dt formats.DType, raw []byte) Acc {
	raw = raw[:len(raw)/dt.Size()*dt.Size()]
	p := sc.stats(dt.Part(), raw)
	if p.NonFinite()+p.Zeros+p.Subnormal > 0 {
		return complexBlocks(dt, raw, &sc.vals)
	}
	a := p
	a.Count, a.Finite, a.M2 = p.Count/2, p.Finite/2, p.M2/2
	return a
}

// complexBlocks folds complex data element by element, blockElems/2 elements
// (blockElems parts) at a time: non-finite elements are classified by
// formats.ClassifyComplex and counted, the parts of the finite ones gathered
// and folded by finishBlock.
func complexBlocks(dt formats.DType, raw []byte, vals *[blockElems]float64) Acc {
	const per = blockElems / 2
	acc := NewAcc()
	w := dt.Size()
	n := len(raw) / w
	minNormal := dt.MinNormal()
	for i := 0; i < n; i += per {
		m := min(per, n-i)
		DecodeFloat64(dt, raw[i*w:(i+m)*w], vals[:2*m])
		b := NewAcc()
		b.Count = uint64(m)
		k := 0 // parts of finite elements gathered at the front of vals
		for j := range m {
			re, im := vals[2*j], vals[2*j+1]
			switch formats.ClassifyComplex(re, im) {
			case formats.ClassNaN:
				b.NaN++
			case formats.ClassPosInf:
				b.PosInf++
			case formats.ClassNegInf:
				b.NegInf++
			default:
				if re == 0 && im == 0 {
					b.Zeros++
				} else if re != 0 && math.Abs(re) < minNormal || im != 0 && math.Abs(im) < minNormal {
					b.Subnormal++
				}
				vals[k], vals[k+1] = re, im
				k += 2
				continue
			}
			if b.FirstBad < 0 {
				b.FirstBad = int64(j)
			}
		}
		if f := finishBlock(vals[:k], true, minNormal); k > 0 {
			b.Finite = uint64(k / 2)
			b.Min, b.Max, b.AbsMax = f.Min, f.Max, f.AbsMax
			b.Mean, b.M2, b.SumSq = f.Mean, f.M2/2, f.SumSq
		}
		acc.Merge(&b)
	}
	return acc
}
