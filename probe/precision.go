package probe

import (
	"fmt"
	"math"

	"github.com/ckpt-tool/ckpt/formats"
)

// The serving dtypes a probe emulates.
var servingDTypes = []formats.DType{formats.F32, formats.BF16, formats.F16}

// ParseDType accepts f32, bf16, f16 and their PyTorch and config.json
// spellings (float32, bfloat16, float16, half).
func ParseDType(s string) (formats.DType, error) {
	switch s {
	case "f32", "F32", "fp32", "float32", "float":
		return formats.F32, nil
	case "bf16", "BF16", "bfloat16":
		return formats.BF16, nil
	case "f16", "F16", "fp16", "float16", "half":
		return formats.F16, nil
	}
	return "", fmt.Errorf("dtype %q cannot be probed (want f32, bf16 or f16)", s)
}

// roundBF16 rounds a float32 to the nearest bfloat16 (ties to even), as
// torch's .to(torch.bfloat16) does; values beyond the range become ±Inf.
func roundBF16(f float32) float32 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN stays NaN (made quiet)
		return math.Float32frombits(b | 0x00400000)
	}
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b & 0xffff0000)
}

// f32ToF16 converts a float32 to the nearest IEEE binary16 pattern (ties to
// even, subnormals kept, overflow to ±Inf).
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 31 {
		return sign | 0x7c00
	}
	if e <= 0 {
		// f16 subnormal: value = k·2^-24 with k = m·2^(e-14), m the 24-bit significand.
		if e < -10 {
			return sign // below half the smallest subnormal
		}
		m := man | 0x800000
		shift := uint(14 - e)
		k := m >> shift
		rem, half := m&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > half || (rem == half && k&1 == 1) {
			k++
		}
		return sign | uint16(k)
	}
	h := man >> 13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is the right answer, up to Inf
	}
	return sign | (uint16(e)<<10 + uint16(h))
}

// f16ToF32 widens a binary16 pattern exactly.
func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		f := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

// roundF16 rounds a float32 to the nearest float16 value.
func roundF16(f float32) float32 { return f16ToF32(f32ToF16(f)) }

// rounder rounds activations to the serving dtype in place: what storing a
// tensor of that dtype does on the GPU.
type rounder func([]float32)

func roundFor(dt formats.DType) rounder {
	switch dt {
	case formats.BF16:
		return func(v []float32) {
			for i := range v {
				v[i] = roundBF16(v[i])
			}
		}
	case formats.F16:
		return func(v []float32) {
			for i := range v {
				v[i] = roundF16(v[i])
			}
		}
	}
	return func([]float32) {}
}

// round1 rounds one value to the serving dtype.
func round1(dt formats.DType, f float32) float32 {
	switch dt {
	case formats.BF16:
		return roundBF16(f)
	case formats.F16:
		return roundF16(f)
	}
	return f
}

// roundF64 rounds a float64 straight to the serving dtype (one rounding, as
// torch converts a float64 tensor): the slow, general path for float64 weights.
func roundF64(dt formats.DType, v float64) float32 {
	switch dt {
	case formats.F32:
		return float32(v)
	case formats.BF16:
		return float32(roundGeneric(v, 7, -126, dt.MaxFinite()))
	case formats.F16:
		return float32(roundGeneric(v, 10, -14, dt.MaxFinite()))
	}
	return float32(v)
}

// roundGeneric rounds v to a binary format with manBits stored mantissa bits,
// minimum normal exponent minExp and largest finite value max, ties to even.
// It is the plain definition the bit-level conversions are tested against.
func roundGeneric(v float64, manBits, minExp int, max float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v == 0 {
		return v
	}
	_, e := math.Frexp(v) // v = f·2^e, 0.5 ≤ |f| < 1: the leading bit is 2^(e-1)
	e--
	if e < minExp {
		e = minExp
	}
	ulp := math.Ldexp(1, e-manBits)
	r := math.RoundToEven(v/ulp) * ulp
	// The value halfway between max and the next power step rounds away.
	if math.Abs(r) > max {
		return math.Copysign(math.Inf(1), v)
	}
	return r
}
