package inspect

import (
	"encoding/binary"
	"math"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
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
	elem := func(i int) float64 { return formats.Element(dt, data, i) }
	if t, tr, ok := dt.Block(); ok {
		// Whole blocks, dequantized by ggml's reference twin; their scales
		// checked one by one.
		blocks := len(data) / tr.BlockBytes
		acc.BadScales = referenceBadScales(t, tr, data[:blocks*tr.BlockBytes])
		if !t.Decodes() {
			acc.Count = uint64(blocks * tr.BlockElems)
			acc.Undecoded = acc.Count
			return acc
		}
		f := make([]float32, blocks*tr.BlockElems)
		n = ggml.DequantizeRef(t, f, data)
		elem = func(i int) float64 { return float64(f[i]) }
	} else if dt.Valid() {
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
			el[p] = elem(parts*i + p)
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

// referenceBadScales counts the blocks with a NaN or infinite scale, each scale
// widened by ggml's reference conversion (IQ1_M, whose scale is spread over
// four nibbles, is left to ggml.BadScales).
func referenceBadScales(t ggml.Type, tr ggml.Traits, data []byte) uint64 {
	if t == ggml.IQ1_M {
		return uint64(ggml.BadScales(t, data))
	}
	var bad uint64
	for off := 0; off+tr.BlockBytes <= len(data); off += tr.BlockBytes {
		blk := data[off : off+tr.BlockBytes]
		isBad := false
		for _, o := range tr.Scales {
			var v float64
			if tr.ScaleF32 {
				v = float64(math.Float32frombits(binary.LittleEndian.Uint32(blk[o:])))
			} else {
				v = float64(ggml.F16ToF32Ref(binary.LittleEndian.Uint16(blk[o:])))
			}
			isBad = isBad || math.IsNaN(v) || math.IsInf(v, 0)
		}
		if isBad {
			bad++
		}
	}
	return bad
}
