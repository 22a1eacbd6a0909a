package formats

import (
	"encoding/binary"
	"math"
)

// This file is the plain, obviously-correct definition of every dtype's bit layout.
// Fast kernels elsewhere are tested against it.

// FloatClass is what one element's bits encode.
type FloatClass uint8

const (
	ClassFinite FloatClass = iota
	ClassNaN
	ClassPosInf
	ClassNegInf
)

// minifloat decodes a sign/exponent/mantissa pattern without special values.
func minifloat(sign, exp, man uint32, manBits int, bias int) float64 {
	var v float64
	if exp == 0 {
		v = math.Ldexp(float64(man), 1-bias-manBits)
	} else {
		v = math.Ldexp(float64(man|1<<manBits), int(exp)-bias-manBits)
	}
	if sign != 0 {
		v = -v
	}
	return v
}

// Decode8 decodes one byte of an 8-bit float dtype (F8_*) into float64, with NaN
// and ±Inf where the format encodes them.
func Decode8(d DType, b uint8) float64 {
	s, x := uint32(b>>7), uint32(b)
	switch d {
	case F8_E5M2: // IEEE-like: bias 15, exponent 31 is Inf (m=0) or NaN.
		e, m := x>>2&0x1F, x&3
		if e == 31 {
			if m == 0 {
				return math.Inf(1 - 2*int(s))
			}
			return math.NaN()
		}
		return minifloat(s, e, m, 2, 15)
	case F8_E4M3: // OCP E4M3FN: bias 7, no Inf, S.1111.111 is NaN.
		if x&0x7F == 0x7F {
			return math.NaN()
		}
		return minifloat(s, x>>3&0xF, x&7, 3, 7)
	case F8_E4M3FNUZ: // bias 8, no Inf, no -0: 0x80 is the only NaN.
		if b == 0x80 {
			return math.NaN()
		}
		return minifloat(s, x>>3&0xF, x&7, 3, 8)
	case F8_E5M2FNUZ: // bias 16, no Inf, 0x80 is the only NaN.
		if b == 0x80 {
			return math.NaN()
		}
		return minifloat(s, x>>2&0x1F, x&3, 2, 16)
	case F8_E8M0: // OCP MX scale: unsigned exponent, bias 127, 0xFF is NaN, no zero.
		if b == 0xFF {
			return math.NaN()
		}
		return math.Ldexp(1, int(b)-127)
	}
	return math.NaN()
}

// DecodeF4 decodes a 4-bit OCP E2M1 value (bias 1; no Inf, no NaN).
func DecodeF4(nibble uint8) float64 {
	x := uint32(nibble & 0xF)
	return minifloat(x>>3, x>>1&3, x&1, 1, 1)
}

// DecodeF6 decodes a 6-bit OCP MX value of type F6_E2M3 (bias 1) or F6_E3M2 (bias 3);
// neither has Inf or NaN.
func DecodeF6(d DType, v uint8) float64 {
	x := uint32(v & 0x3F)
	if d == F6_E2M3 {
		return minifloat(x>>5, x>>3&3, x&7, 3, 1)
	}
	return minifloat(x>>5, x>>2&7, x&3, 2, 3)
}

// BF16ToFloat32 widens a bfloat16 bit pattern exactly.
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F16ToFloat64 decodes an IEEE binary16 pattern exactly (reference definition).
func F16ToFloat64(h uint16) float64 {
	s, e, m := uint32(h>>15), uint32(h>>10&0x1F), uint32(h&0x3FF)
	if e == 31 {
		if m == 0 {
			return math.Inf(1 - 2*int(s))
		}
		return math.NaN()
	}
	return minifloat(s, e, m, 10, 15)
}

// ElementCount is the number of elements in a tensor of the given byte length.
func ElementCount(d DType, nbytes int) int { return nbytes * 8 / d.Bits() }

// Element decodes element i of raw little-endian tensor data as float64, the plain
// reference for every dtype. Integers and bools are converted exactly where float64
// can hold them. For the complex dtypes element i is the i-th part (real parts
// at even i): an F32 for C64, an F64 for C128.
// Sub-byte types are packed least-significant bits first.
func Element(d DType, data []byte, i int) float64 {
	switch d {
	case BOOL, U8:
		return float64(data[i])
	case I8:
		return float64(int8(data[i]))
	case I16:
		return float64(int16(binary.LittleEndian.Uint16(data[2*i:])))
	case U16:
		return float64(binary.LittleEndian.Uint16(data[2*i:]))
	case I32:
		return float64(int32(binary.LittleEndian.Uint32(data[4*i:])))
	case U32:
		return float64(binary.LittleEndian.Uint32(data[4*i:]))
	case I64:
		return float64(int64(binary.LittleEndian.Uint64(data[8*i:])))
	case U64:
		return float64(binary.LittleEndian.Uint64(data[8*i:]))
	case F16:
		return F16ToFloat64(binary.LittleEndian.Uint16(data[2*i:]))
	case BF16:
		return float64(BF16ToFloat32(binary.LittleEndian.Uint16(data[2*i:])))
	case F32, C64:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:])))
	case F64, C128:
		return math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:]))
	case F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ:
		return Decode8(d, data[i])
	case F4:
		return DecodeF4(data[i/2] >> (4 * (i % 2)))
	case F6_E2M3, F6_E3M2:
		bit := 6 * i
		w := uint16(data[bit/8])
		if bit%8 > 2 {
			w |= uint16(data[bit/8+1]) << 8
		}
		return DecodeF6(d, uint8(w>>(bit%8)))
	}
	return math.NaN()
}

// ClassifyComplex says whether a complex element with parts re and im is
// finite, NaN or an infinity. An element is not finite when either part is
// not; NaN wins (NaN+Inf·i is NaN), and an infinite element takes the sign of
// its real part when that is infinite, else of its imaginary part
// (+Inf-Inf·i is +Inf, 1-Inf·i is -Inf). So each element is counted once,
// and a tensor's NaN, +Inf and -Inf counts add up to at most its element count.
func ClassifyComplex(re, im float64) FloatClass {
	cr, ci := Classify(re), Classify(im)
	switch {
	case cr == ClassNaN || ci == ClassNaN:
		return ClassNaN
	case cr != ClassFinite:
		return cr
	}
	return ci
}

// Classify says whether a decoded value is finite, NaN or an infinity.
func Classify(v float64) FloatClass {
	switch {
	case math.IsNaN(v):
		return ClassNaN
	case math.IsInf(v, 1):
		return ClassPosInf
	case math.IsInf(v, -1):
		return ClassNegInf
	}
	return ClassFinite
}
