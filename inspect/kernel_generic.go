package inspect

import (
	"encoding/binary"
	"math"

	"github.com/ckpt-tool/ckpt/formats"
)

// blockElems is how many elements the block kernels hold at once: small enough
// for the decoded block to stay in the L1 cache between its two passes, and a
// multiple of 4 so that every block of a sub-byte dtype starts on a byte.
const blockElems = 1024

// statsGeneric is the kernel for any dtype but the complex ones: each block is
// decoded into float64 by DecodeFloat64 and folded by foldBlock.
func statsGeneric(dt formats.DType, raw []byte, vals *[blockElems]float64) Acc {
	acc := NewAcc()
	n := partCount(dt, len(raw))
	minNormal := dt.MinNormal()
	for i := 0; i < n; i += blockElems {
		m := min(blockElems, n-i)
		var b Acc
		if dt == formats.BF16 || dt == formats.F16 {
			if bad, tiny := decode16(dt, raw[2*i:2*(i+m)], vals[:m]); !bad {
				b = finishBlock(vals[:m], tiny, minNormal)
			} else {
				b = foldBlock(vals[:m], minNormal)
			}
		} else {
			DecodeFloat64(dt, raw[i*partBits(dt)/8:], vals[:m])
			b = foldBlock(vals[:m], minNormal)
		}
		acc.Merge(&b)
	}
	return acc
}

// decode16 decodes a block of BF16 or F16 data into v and says, from the
// exponent bits, whether any value is non-finite and whether any is zero or
// subnormal (as decodeF32 does).
func decode16(dt formats.DType, blk []byte, v []float64) (nonFinite, tiny bool) {
	expMask, expOne := uint32(0x7F80), uint32(0x0080)
	if dt == formats.F16 {
		expMask, expOne = 0x7C00, 0x0400
	}
	var hiFlag uint32
	loFlag := uint32(math.MaxUint32)
	blk = blk[:2*len(v)]
	t := f16Table()
	for j := range v {
		h := binary.LittleEndian.Uint16(blk[2*j:])
		e := uint32(h) & expMask
		hiFlag |= e + expOne  // reaches bit 15 only from all ones
		loFlag &= e + expMask // leaves bit 15 clear only from all zeros
		if dt == formats.BF16 {
			v[j] = float64(math.Float32frombits(uint32(h) << 16))
		} else {
			v[j] = float64(t[h])
		}
	}
	return hiFlag&0x8000 != 0, loFlag&0x8000 == 0
}

// foldBlock computes the accumulator of a block of decoded values, non-finite
// ones included. A block without NaN or infinity goes to finishBlock; the
// others are counted and folded value by value, in two passes over the finite
// values (the block is in cache, and two passes keep a large mean with a
// small spread exact where a one-pass formula would cancel).
func foldBlock(vals []float64, minNormal float64) Acc {
	const expMask = 0x7FF0000000000000
	clean := true
	for _, v := range vals {
		clean = clean && math.Float64bits(v)&expMask != expMask
	}
	if clean {
		return finishBlock(vals, true, minNormal)
	}
	b := NewAcc()
	b.Count = uint64(len(vals))
	var sum float64
	kmin, kmax := int64(math.MaxInt64), int64(math.MinInt64)
	for i, v := range vals {
		w := math.Float64bits(v)
		if w&expMask == expMask {
			switch {
			case w&^(expMask|1<<63) != 0:
				b.NaN++
			case v > 0:
				b.PosInf++
			default:
				b.NegInf++
			}
			if b.FirstBad < 0 {
				b.FirstBad = int64(i)
			}
			continue
		}
		sum += v
		k := orderKey64(w)
		kmin, kmax = min(kmin, k), max(kmax, k)
		if v == 0 {
			b.Zeros++
		} else if math.Abs(v) < minNormal {
			b.Subnormal++
		}
	}
	b.Finite = b.Count - b.NonFinite()
	if b.Finite == 0 {
		return b
	}
	b.Min, b.Max = keyValue64(kmin), keyValue64(kmax)
	b.AbsMax = math.Max(-b.Min, b.Max)
	b.Mean = sum / float64(b.Finite)
	for _, v := range vals {
		if math.Float64bits(v)&expMask != expMask {
			d := v - b.Mean
			b.M2 += d * d
			b.SumSq += v * v
		}
	}
	return b
}

// orderKey64 maps the bits of a float64 to an int64 with the same order
// (-0 just below +0), so extremes can be tracked as integers.
func orderKey64(w uint64) int64 { return int64(w) ^ (int64(w) >> 63 & math.MaxInt64) }

// keyValue64 inverts orderKey64.
func keyValue64(k int64) float64 { return math.Float64frombits(uint64(k ^ (k >> 63 & math.MaxInt64))) }
