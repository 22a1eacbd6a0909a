package ggml

import "math"

// Dequantize decodes the whole blocks of src into dst with the fast kernels
// and returns the number of values written: min(len(src)/BlockBytes,
// len(dst)/BlockElems) blocks. It writes nothing (and returns 0) for a type
// that Decodes reports false for.
func Dequantize(t Type, dst []float32, src []byte) int {
	f, ok := fast[t]
	if !ok {
		return 0
	}
	tr := table[t]
	n := min(len(src)/tr.BlockBytes, len(dst)/tr.BlockElems)
	f(dst, src, n)
	return n * tr.BlockElems
}

// DequantizeRef is Dequantize with the reference kernels, one block at a time.
func DequantizeRef(t Type, dst []float32, src []byte) int {
	f, ok := ref[t]
	if !ok {
		return 0
	}
	tr := table[t]
	n := min(len(src)/tr.BlockBytes, len(dst)/tr.BlockElems)
	for i := range n {
		f(dst[i*tr.BlockElems:(i+1)*tr.BlockElems], src[i*tr.BlockBytes:(i+1)*tr.BlockBytes])
	}
	return n * tr.BlockElems
}

// BadScales counts the whole blocks of src whose scale (any fp16 d, dmin or m;
// Q8_K's float32 d; IQ1_M's assembled fp16 scale) is NaN or infinite. Every
// value of such a block dequantizes to a non-finite value or, for a bad
// minimum, a non-finite offset. 0 for the plain types and for the types whose
// scales are not IEEE (MXFP4's E8M0 exponent, NVFP4's UE4M3 scales).
func BadScales(t Type, src []byte) int {
	tr, ok := table[t]
	if !ok || tr.BlockElems == 1 {
		return 0
	}
	bad := 0
	for off := 0; off+tr.BlockBytes <= len(src); off += tr.BlockBytes {
		b := src[off : off+tr.BlockBytes]
		if blockScaleBad(t, &tr, b) {
			bad++
		}
	}
	return bad
}

func f16NonFinite(h uint16) bool { return h&0x7c00 == 0x7c00 }

func blockScaleBad(t Type, tr *Traits, b []byte) bool {
	switch {
	case t == IQ1_M:
		return f16NonFinite(iq1mScale(b))
	case tr.ScaleF32:
		f := math.Float32frombits(le32(b[tr.Scales[0]:]))
		return math.IsNaN(float64(f)) || math.IsInf(float64(f), 0)
	}
	for _, o := range tr.Scales {
		if f16NonFinite(le16(b[o:])) {
			return true
		}
	}
	return false
}

// iq1mScale assembles IQ1_M's fp16 super-block scale from the top nibbles of
// its four scale words (dequantize_row_iq1_m).
func iq1mScale(b []byte) uint16 {
	sc := b[48:56]
	s0, s1, s2, s3 := le16(sc[0:]), le16(sc[2:]), le16(sc[4:]), le16(sc[6:])
	return (s0 >> 12) | ((s1 >> 8) & 0x00f0) | ((s2 >> 4) & 0x0f00) | (s3 & 0xf000)
}
