package inspect

import (
	"encoding/binary"
	"math"
	"sync"

	"github.com/ckpt-tool/ckpt/formats"
)

// The histogram kernels serve every dtype of 8 or 16 bits. Counting how often
// each bit pattern occurs costs one increment per element (no decoding, no
// floating-point work, no branch), and every statistic then follows exactly
// from at most 65536 occupied bins: counts and extremes exactly, sums as
// count × value products, which are exact in float64, added in bin order.

// hist16Stats is the kernel for BF16, F16, I16 and U16 data of at most
// maxKernelElems elements.
func (sc *scratch) hist16Stats(dt formats.DType, raw []byte) Acc {
	raw = raw[:len(raw)/2*2]
	sc.fill16(raw)
	acc := sc.reduce16(dt, uint64(len(raw)/2))
	if acc.NonFinite() > 0 {
		acc.FirstBad = firstBad16(raw, class16(dt))
	}
	return acc
}

// fill16 adds 16-bit data (an even number of bytes) to the histogram; runs
// of data can be added one after the other before one reduce16.
func (sc *scratch) fill16(raw []byte) {
	if sc.h16 == nil {
		sc.h16 = new([65536]uint32)
		sc.nz = make([]uint16, 0, 65536)
	}
	h := sc.h16
	for len(raw) >= 16 {
		w := binary.LittleEndian.Uint64(raw)
		v := binary.LittleEndian.Uint64(raw[8:])
		raw = raw[16:]
		h[uint16(w)]++
		h[uint16(w>>16)]++
		h[uint16(w>>32)]++
		h[uint16(w>>48)]++
		h[uint16(v)]++
		h[uint16(v>>16)]++
		h[uint16(v>>32)]++
		h[uint16(v>>48)]++
	}
	for len(raw) >= 2 {
		h[binary.LittleEndian.Uint16(raw)]++
		raw = raw[2:]
	}
}

// anyNonFinite16 reports whether the histogram holds a NaN or an infinity of
// dt (the bins whose exponent bits are all ones).
func (sc *scratch) anyNonFinite16(dt formats.DType) bool {
	var lo int
	switch dt {
	case formats.BF16:
		lo = 0x7F80
	case formats.F16:
		lo = 0x7C00
	default:
		return false
	}
	for _, base := range []int{0, 0x8000} {
		for b := base + lo; b < base+0x8000; b++ {
			if sc.h16[b] != 0 {
				return true
			}
		}
	}
	return false
}

// clear16 empties the histogram after an interrupted fill.
func (sc *scratch) clear16() {
	if sc.h16 != nil {
		*sc.h16 = [65536]uint32{}
	}
}

// reduce16 computes the accumulator of the n elements counted in the
// histogram (FirstBad is left at -1) and empties the histogram.
func (sc *scratch) reduce16(dt formats.DType, n uint64) Acc {
	if sc.h16 == nil {
		sc.fill16(nil)
	}
	h := sc.h16
	// Gather the occupied bins, four at a time (most are empty), and clear them.
	nz := sc.nz[:0]
	for b := 0; b < len(h); b += 4 {
		if h[b]|h[b+1]|h[b+2]|h[b+3] == 0 {
			continue
		}
		for k := b; k < b+4; k++ {
			if h[k] != 0 {
				nz = append(nz, uint16(k))
			}
		}
	}
	sc.nz = nz

	acc := NewAcc()
	acc.Count = n
	// Decode the occupied bins into (value, count) pairs, counting the
	// non-finite ones on the way.
	vals, cnts := sc.vals16[:0], sc.cnts16[:0]
	var expMask uint16
	switch dt {
	case formats.BF16:
		expMask = 0x7F80
	case formats.F16:
		expMask = 0x7C00
	}
	f16 := f16Table()
	for _, b := range nz {
		c := h[b]
		h[b] = 0
		if expMask != 0 && b&expMask == expMask {
			switch {
			case b&^(expMask|0x8000) != 0:
				acc.NaN += uint64(c)
			case b&0x8000 != 0:
				acc.NegInf += uint64(c)
			default:
				acc.PosInf += uint64(c)
			}
			continue
		}
		var v float64
		switch dt {
		case formats.BF16:
			v = float64(math.Float32frombits(uint32(b) << 16))
		case formats.F16:
			v = float64(f16[b])
		case formats.I16:
			v = float64(int16(b))
		default:
			v = float64(b)
		}
		vals = append(vals, v)
		cnts = append(cnts, float64(c))
	}
	sc.vals16, sc.cnts16 = vals, cnts
	foldWeighted(&acc, vals, cnts, dt.MinNormal())
	return acc
}

// foldWeighted folds distinct finite values, each occurring cnts[i] times,
// into acc: counts, extremes, the mean, then the squared deviations from it.
// Every product count × value is exact in float64.
func foldWeighted(acc *Acc, vals, cnts []float64, minNormal float64) {
	var sum, finite float64
	kmin, kmax := int64(math.MaxInt64), int64(math.MinInt64)
	for i, v := range vals {
		c := cnts[i]
		finite += c
		sum += c * v
		k := orderKey64(math.Float64bits(v))
		kmin, kmax = min(kmin, k), max(kmax, k)
		if v == 0 {
			acc.Zeros += uint64(c)
		} else if math.Abs(v) < minNormal {
			acc.Subnormal += uint64(c)
		}
	}
	if len(vals) == 0 {
		return
	}
	acc.Finite = uint64(finite)
	acc.Min, acc.Max = keyValue64(kmin), keyValue64(kmax)
	acc.AbsMax = math.Max(-acc.Min, acc.Max)
	acc.Mean = sum / finite
	var m2, sq float64
	for i, v := range vals {
		d := v - acc.Mean
		m2 += cnts[i] * d * d
		sq += cnts[i] * v * v
	}
	acc.M2, acc.SumSq = m2, sq
}

// firstBad16 is the index of the first non-finite element of 16-bit data, -1
// when there is none.
func firstBad16(raw []byte, class func(uint16) formats.FloatClass) int64 {
	for i := 0; i+2 <= len(raw); i += 2 {
		if class(binary.LittleEndian.Uint16(raw[i:])) != formats.ClassFinite {
			return int64(i / 2)
		}
	}
	return -1
}

// class16 returns how to classify one 16-bit pattern of dt.
func class16(dt formats.DType) func(uint16) formats.FloatClass {
	switch dt {
	case formats.BF16:
		return func(b uint16) formats.FloatClass { return ieeeClass(b, 0x7F80) }
	case formats.F16:
		return func(b uint16) formats.FloatClass { return ieeeClass(b, 0x7C00) }
	}
	return func(uint16) formats.FloatClass { return formats.ClassFinite }
}

// ieeeClass classifies a 16-bit IEEE-style pattern whose exponent field is
// expMask: all exponent bits set is an infinity (zero mantissa) or a NaN.
func ieeeClass(b, expMask uint16) formats.FloatClass {
	if b&expMask != expMask {
		return formats.ClassFinite
	}
	switch {
	case b&^(expMask|0x8000) != 0:
		return formats.ClassNaN
	case b&0x8000 != 0:
		return formats.ClassNegInf
	}
	return formats.ClassPosInf
}

// table8 holds the decoded value of every byte of one 8-bit dtype.
type table8 struct {
	value     [256]float64
	class     [256]formats.FloatClass
	minNormal float64
}

var tables8 sync.Map // formats.DType → *table8

// decoder8 returns the decoding table of an 8-bit dtype, built once from the
// reference decoder formats.Element.
func decoder8(dt formats.DType) *table8 {
	if t, ok := tables8.Load(dt); ok {
		return t.(*table8)
	}
	t := &table8{minNormal: dt.MinNormal()}
	for b := 0; b < 256; b++ {
		v := formats.Element(dt, []byte{byte(b)}, 0)
		t.value[b], t.class[b] = v, formats.Classify(v)
	}
	actual, _ := tables8.LoadOrStore(dt, t)
	return actual.(*table8)
}

// hist8Stats is the kernel for the one-byte dtypes (BOOL, U8, I8 and the F8
// types) on at most maxKernelElems elements.
func (sc *scratch) hist8Stats(dt formats.DType, raw []byte) Acc {
	if len(raw) >= pairs8MinElems {
		sc.fillPairs8(raw)
		sc.pairsTo8()
	} else {
		sc.fill8(raw)
	}
	acc := sc.reduce8(dt, uint64(len(raw)))
	if acc.NonFinite() > 0 {
		acc.FirstBad = firstBad8(dt, raw)
	}
	return acc
}

// fill8 adds one-byte data to the 256-bin histogram.
func (sc *scratch) fill8(raw []byte) {
	h := &sc.h8
	for len(raw) >= 8 {
		w := binary.LittleEndian.Uint64(raw)
		raw = raw[8:]
		h[uint8(w)]++
		h[uint8(w>>8)]++
		h[uint8(w>>16)]++
		h[uint8(w>>24)]++
		h[uint8(w>>32)]++
		h[uint8(w>>40)]++
		h[uint8(w>>48)]++
		h[uint8(w>>56)]++
	}
	for _, b := range raw {
		h[b]++
	}
}

// pairs8MinElems is the length from which one-byte data is counted in pairs.
const pairs8MinElems = 2 * hist16MinElems

// fillPairs8 adds one-byte data to the 16-bit histogram as pairs of bytes,
// one increment for two elements (twice as fast as fill8 on long data); an
// odd last byte goes to the 256-bin histogram. pairsTo8 folds the pairs back.
func (sc *scratch) fillPairs8(raw []byte) {
	sc.fill16(raw[:len(raw)/2*2])
	if len(raw)%2 == 1 {
		sc.h8[raw[len(raw)-1]]++
	}
}

// pairsTo8 folds the 16-bit histogram of byte pairs into the 256-bin one
// (each pair counts once for each of its bytes) and empties it.
func (sc *scratch) pairsTo8() {
	if sc.h16 == nil {
		return
	}
	h := sc.h16
	for b := 0; b < len(h); b += 4 {
		if h[b]|h[b+1]|h[b+2]|h[b+3] == 0 {
			continue
		}
		for k := b; k < b+4; k++ {
			if c := h[k]; c != 0 {
				sc.h8[k&0xFF] += c
				sc.h8[k>>8] += c
				h[k] = 0
			}
		}
	}
}

// clear8 empties both histograms after an interrupted fill.
func (sc *scratch) clear8() {
	sc.h8 = [256]uint32{}
	sc.clear16()
}

// reduce8 computes the accumulator of the n elements counted in the 256-bin
// histogram (FirstBad is left at -1) and empties it.
func (sc *scratch) reduce8(dt formats.DType, n uint64) Acc {
	h := &sc.h8
	t := decoder8(dt)
	acc := NewAcc()
	acc.Count = n
	var vals, cnts [256]float64
	k := 0
	for b := range h {
		c := h[b]
		if c == 0 {
			continue
		}
		switch t.class[b] {
		case formats.ClassNaN:
			acc.NaN += uint64(c)
		case formats.ClassPosInf:
			acc.PosInf += uint64(c)
		case formats.ClassNegInf:
			acc.NegInf += uint64(c)
		default:
			vals[k], cnts[k] = t.value[b], float64(c)
			k++
		}
	}
	foldWeighted(&acc, vals[:k], cnts[:k], t.minNormal)
	*h = [256]uint32{}
	return acc
}

// firstBad8 is the index of the first non-finite element of one-byte data,
// -1 when there is none.
func firstBad8(dt formats.DType, raw []byte) int64 {
	t := decoder8(dt)
	for i, b := range raw {
		if t.class[b] != formats.ClassFinite {
			return int64(i)
		}
	}
	return -1
}
