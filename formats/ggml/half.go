package ggml

import (
	"encoding/binary"
	"math"
)

// F16ToF32Ref widens an IEEE binary16 bit pattern to float32 exactly, by its
// definition: subnormals become normal float32 values, infinities stay
// infinite, and a NaN keeps its sign and payload (shifted into the top of the
// float32 mantissa) with the quiet bit set, as ggml's conversion does
// (ggml_compute_fp16_to_fp32 multiplies by 2^-112, which quiets a
// signalling NaN; F16C's conversion quiets it too).
func F16ToF32Ref(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: mant * 2^-24, exact in float32
		v := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(v))
	case exp == 31 && mant == 0:
		return math.Float32frombits(sign | 0x7f800000)
	case exp == 31:
		return math.Float32frombits(sign | 0x7fc00000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// f16Table holds F16ToF32Ref of every bit pattern (256 KiB): the fast path.
var f16Table = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = F16ToF32Ref(uint16(i))
	}
	return &t
}()

// F16ToF32 is F16ToF32Ref by table lookup.
func F16ToF32(h uint16) float32 { return f16Table[h] }

// BF16ToF32 widens a bfloat16 bit pattern exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// E8M0ToF32Half is ggml_e8m0_to_fp32_half (ggml-impl.h): 2^(x-128) for the
// shared exponent of an MXFP4 block, 0x00200000<<x below 2; ggml does not
// treat 255 as NaN (it is 2^127).
func E8M0ToF32Half(x uint8) float32 {
	var bits uint32
	if x < 2 {
		bits = 0x00200000 << x
	} else {
		bits = uint32(x-1) << 23
	}
	return math.Float32frombits(bits)
}

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// kvaluesIQ4NL is ggml-common.h's kvalues_iq4nl.
var kvaluesIQ4NL = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// kvaluesMXFP4 is ggml-common.h's kvalues_mxfp4 (twice the E2M1 values).
var kvaluesMXFP4 = [16]int8{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}
