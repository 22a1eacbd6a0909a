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
	if sc.h16 == nil {
		sc.h16 = new([65536]uint32)
		sc.nz = make([]uint16, 0, 65536)
	}
	h := sc.h16
	n := len(raw) / 2
	raw = raw[:2*n]
	i := 0
	for ; i+8 <= len(raw); i += 8 {
		w := binary.LittleEndian.Uint64(raw[i:])
		h[uint16(w)]++
		h[uint16(w>>16)]++
		h[uint16(w>>32)]++
		h[uint16(w>>48)]++
	}
	for ; i < len(raw); i += 2 {
		h[binary.LittleEndian.Uint16(raw[i:])]++
	}

	// Gather the occupied bins and clear them for the next call.
	nz := sc.nz[:0]
	for b := range h {
		if h[b] != 0 {
			nz = append(nz, uint16(b))
		}
	}
	sc.nz = nz

	value, class, minNormal := decoder16(dt)
	acc := NewAcc()
	acc.Count = uint64(n)
	var sum float64
	for _, b := range nz {
		c := uint64(h[b])
		switch class(b) {
		case formats.ClassNaN:
			acc.NaN += c
			continue
		case formats.ClassPosInf:
			acc.PosInf += c
			continue
		case formats.ClassNegInf:
			acc.NegInf += c
			continue
		}
		v := value(b)
		acc.Finite += c
		sum += float64(c) * v
		acc.Min = math.Min(acc.Min, v)
		acc.Max = math.Max(acc.Max, v)
		if v == 0 {
			acc.Zeros += c
		} else if math.Abs(v) < minNormal {
			acc.Subnormal += c
		}
	}
	if acc.Finite > 0 {
		acc.AbsMax = math.Max(-acc.Min, acc.Max)
		acc.Mean = sum / float64(acc.Finite)
		for _, b := range nz {
			if class(b) != formats.ClassFinite {
				continue
			}
			c, v := float64(h[b]), value(b)
			d := v - acc.Mean
			acc.M2 += c * d * d
			acc.SumSq += c * v * v
		}
	}
	for _, b := range nz {
		h[b] = 0
	}
	if acc.NonFinite() > 0 {
		acc.FirstBad = firstBad16(dt, raw, class)
	}
	return acc
}

// firstBad16 is the index of the first non-finite element of 16-bit data, -1
// when there is none.
func firstBad16(dt formats.DType, raw []byte, class func(uint16) formats.FloatClass) int64 {
	for i := 0; i+2 <= len(raw); i += 2 {
		if class(binary.LittleEndian.Uint16(raw[i:])) != formats.ClassFinite {
			return int64(i / 2)
		}
	}
	return -1
}

// decoder16 returns how to decode and classify one 16-bit pattern of dt, and
// dt's smallest normal magnitude.
func decoder16(dt formats.DType) (value func(uint16) float64, class func(uint16) formats.FloatClass, minNormal float64) {
	finite := func(uint16) formats.FloatClass { return formats.ClassFinite }
	switch dt {
	case formats.BF16:
		return func(b uint16) float64 { return float64(math.Float32frombits(uint32(b) << 16)) },
			func(b uint16) formats.FloatClass { return ieeeClass(b, 0x7F80) }, dt.MinNormal()
	case formats.F16:
		t := f16Table()
		return func(b uint16) float64 { return float64(t[b]) },
			func(b uint16) formats.FloatClass { return ieeeClass(b, 0x7C00) }, dt.MinNormal()
	case formats.I16:
		return func(b uint16) float64 { return float64(int16(b)) }, finite, 0
	}
	return func(b uint16) float64 { return float64(b) }, finite, 0
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
	h := &sc.h8
	i := 0
	for ; i+8 <= len(raw); i += 8 {
		w := binary.LittleEndian.Uint64(raw[i:])
		h[uint8(w)]++
		h[uint8(w>>8)]++
		h[uint8(w>>16)]++
		h[uint8(w>>24)]++
		h[uint8(w>>32)]++
		h[uint8(w>>40)]++
		h[uint8(w>>48)]++
		h[uint8(w>>56)]++
	}
	for ; i < len(raw); i++ {
		h[raw[i]]++
	}
	t := decoder8(dt)
	acc := NewAcc()
	acc.Count = uint64(len(raw))
	var sum float64
	for b := range h {
		c := uint64(h[b])
		if c == 0 {
			continue
		}
		switch t.class[b] {
		case formats.ClassNaN:
			acc.NaN += c
			continue
		case formats.ClassPosInf:
			acc.PosInf += c
			continue
		case formats.ClassNegInf:
			acc.NegInf += c
			continue
		}
		v := t.value[b]
		acc.Finite += c
		sum += float64(c) * v
		acc.Min = math.Min(acc.Min, v)
		acc.Max = math.Max(acc.Max, v)
		if v == 0 {
			acc.Zeros += c
		} else if math.Abs(v) < t.minNormal {
			acc.Subnormal += c
		}
	}
	if acc.Finite > 0 {
		acc.AbsMax = math.Max(-acc.Min, acc.Max)
		acc.Mean = sum / float64(acc.Finite)
		for b := range h {
			if h[b] == 0 || t.class[b] != formats.ClassFinite {
				continue
			}
			c, v := float64(h[b]), t.value[b]
			d := v - acc.Mean
			acc.M2 += c * d * d
			acc.SumSq += c * v * v
		}
	}
	*h = [256]uint32{}
	if acc.NonFinite() > 0 {
		for i, b := range raw {
			if t.class[b] != formats.ClassFinite {
				acc.FirstBad = int64(i)
				break
			}
		}
	}
	return acc
}
