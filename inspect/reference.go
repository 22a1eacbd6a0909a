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
func ReferenceStats(dt formats.DType, data []byte) Acc {
	acc := NewAcc()
	var n int
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
	} else {
		n = elementCount(dt, len(data))
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
		v := elem(i)
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
