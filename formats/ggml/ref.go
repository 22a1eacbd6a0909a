package ggml

import (
	"encoding/binary"
	"math"
)

// The reference dequantizers: one block (src holds exactly BlockBytes bytes,
// y exactly BlockElems values), transcribed line by line from
// dequantize_row_* of ggml/src/ggml-quants.c. Every product that C rounds
// before an addition is wrapped in float32(...), which in Go forbids fusing it
// into a multiply-add, so the result is the C one with separately rounded
// operations on every platform. Integer expressions keep C's widths.

type refFunc func(y []float32, b []byte)

var ref = map[Type]refFunc{
	F32:  func(y []float32, b []byte) { y[0] = math.Float32frombits(le32(b)) },
	F16:  func(y []float32, b []byte) { y[0] = F16ToF32Ref(le16(b)) },
	BF16: func(y []float32, b []byte) { y[0] = BF16ToF32(le16(b)) },
	F64:  func(y []float32, b []byte) { y[0] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b))) },
	I8:   func(y []float32, b []byte) { y[0] = float32(int8(b[0])) },
	I16:  func(y []float32, b []byte) { y[0] = float32(int16(le16(b))) },
	I32:  func(y []float32, b []byte) { y[0] = float32(int32(le32(b))) },
	I64:  func(y []float32, b []byte) { y[0] = float32(int64(binary.LittleEndian.Uint64(b))) },

	Q4_0: refQ4_0, Q4_1: refQ4_1, Q5_0: refQ5_0, Q5_1: refQ5_1,
	Q8_0: refQ8_0, Q8_1: refQ8_1,
	Q2_K: refQ2_K, Q3_K: refQ3_K, Q4_K: refQ4_K, Q5_K: refQ5_K, Q6_K: refQ6_K, Q8_K: refQ8_K,
	TQ1_0: refTQ1_0, TQ2_0: refTQ2_0, IQ4_NL: refIQ4_NL, IQ4_XS: refIQ4_XS,
	MXFP4: refMXFP4, Q1_0: refQ1_0, Q2_0: refQ2_0,
}

func refQ4_0(y []float32, b []byte) {
	d := F16ToF32Ref(le16(b[0:]))
	qs := b[2:]
	for j := 0; j < 16; j++ {
		x0 := int(qs[j]&0x0F) - 8
		x1 := int(qs[j]>>4) - 8
		y[j+0] = float32(x0) * d
		y[j+16] = float32(x1) * d
	}
}

func refQ4_1(y []float32, b []byte) {
	d := F16ToF32Ref(le16(b[0:]))
	m := F16ToF32Ref(le16(b[2:]))
	qs := b[4:]
	for j := 0; j < 16; j++ {
		x0 := int(qs[j] & 0x0F)
		x1 := int(qs[j] >> 4)
		y[j+0] = float32(float32(x0)*d) + m
		y[j+16] = float32(float32(x1)*d) + m
	}
}

func refQ5_0(y []float32, b []byte) {
	d := F16ToF32Ref(le16(b[0:]))
	qh := le32(b[2:])
	qs := b[6:]
	for j := 0; j < 16; j++ {
		xh0 := uint8(((qh >> (j + 0)) << 4) & 0x10)
		xh1 := uint8((qh >> (j + 12)) & 0x10)
		x0 := int32((qs[j]&0x0F)|xh0) - 16
		x1 := int32((qs[j]>>4)|xh1) - 16
		y[j+0] = float32(x0) * d
		y[j+16] = float32(x1) * d
	}
}

func refQ5_1(y []float32, b []byte) {
	d := F16ToF32Ref(le16(b[0:]))
	m := F16ToF32Ref(le16(b[2:]))
	qh := le32(b[4:])
	qs := b[8:]
	for j := 0; j < 16; j++ {
		xh0 := uint8(((qh >> (j + 0)) << 4) & 0x10)
		xh1 := uint8((qh >> (j + 12)) & 0x10)
		x0 := int((qs[j] & 0x0F) | xh0)
		x1 := int((qs[j] >> 4) | xh1)
		y[j+0] = float32(float32(x0)*d) + m
		y[j+16] = float32(float32(x1)*d) + m
	}
}

func refQ8_0(y []float32, b []byte) {
	d := F16ToF32Ref(le16(b[0:]))
	qs := b[2:]
	for j := 0; j < 32; j++ {
		y[j] = float32(int8(qs[j])) * d
	}
}

// refQ8_1 decodes Q8_1 (ggml's intermediate type, d and s = d*sum(qs), then
// 32 int8) as qs*d, like Q8_0; ggml has no dequantize_row_q8_1.
func refQ8_1(y []float32, b []byte) {
	refQ8_0(y, append(b[0:2:2], b[4:36]...))
}

// Q2_K: scales[16] | qs[64] | d | dmin.
func refQ2_K(y []float32, b []byte) {
	scales := b[0:16]
	d := F16ToF32Ref(le16(b[80:]))
	min := F16ToF32Ref(le16(b[82:]))
	q := b[16:80]
	is := 0
	k := 0
	for n := 0; n < QK_K; n += 128 {
		shift := uint(0)
		for j := 0; j < 4; j++ {
			sc := scales[is]
			is++
			dl := d * float32(sc&0xF)
			ml := min * float32(sc>>4)
			for l := 0; l < 16; l++ {
				y[k] = float32(dl*float32(int8((q[l]>>shift)&3))) - ml
				k++
			}
			sc = scales[is]
			is++
			dl = d * float32(sc&0xF)
			ml = min * float32(sc>>4)
			for l := 0; l < 16; l++ {
				y[k] = float32(dl*float32(int8((q[l+16]>>shift)&3))) - ml
				k++
			}
			shift += 2
		}
		q = q[32:]
	}
}

// q3kScales unpacks Q3_K's twelve bytes of 6-bit scales as ggml does, through
// four little-endian uint32 words.
func q3kScales(s []byte) [16]int8 {
	const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
	a0, a1, tmp := le32(s[0:]), le32(s[4:]), le32(s[8:])
	var aux [4]uint32
	aux[2] = ((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)
	aux[3] = ((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)
	aux[0] = (a0 & kmask2) | (((tmp >> 0) & kmask1) << 4)
	aux[1] = (a1 & kmask2) | (((tmp >> 2) & kmask1) << 4)
	var out [16]int8
	for i, w := range aux {
		for k := 0; k < 4; k++ {
			out[4*i+k] = int8(w >> (8 * k))
		}
	}
	return out
}

// Q3_K: hmask[32] | qs[64] | scales[12] | d.
func refQ3_K(y []float32, b []byte) {
	dAll := F16ToF32Ref(le16(b[108:]))
	q := b[32:96]
	hm := b[0:32]
	scales := q3kScales(b[96:108])
	m := uint8(1)
	is := 0
	k := 0
	for n := 0; n < QK_K; n += 128 {
		shift := uint(0)
		for j := 0; j < 4; j++ {
			dl := dAll * float32(int(scales[is])-32)
			is++
			for l := 0; l < 16; l++ {
				h := 4
				if hm[l+0]&m != 0 {
					h = 0
				}
				y[k] = dl * float32(int(int8((q[l+0]>>shift)&3))-h)
				k++
			}
			dl = dAll * float32(int(scales[is])-32)
			is++
			for l := 0; l < 16; l++ {
				h := 4
				if hm[l+16]&m != 0 {
					h = 0
				}
				y[k] = dl * float32(int(int8((q[l+16]>>shift)&3))-h)
				k++
			}
			shift += 2
			m <<= 1
		}
		q = q[32:]
	}
}

// scaleMinK4 is get_scale_min_k4 of ggml-quants.c.
func scaleMinK4(j int, q []byte) (d, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4), (q[j+4] >> 4) | ((q[j-0] >> 6) << 4)
}

// kScales is the pair of scales and minimums of sub-blocks j and j+1 of a
// Q4_K or Q5_K super-block, as dequantize_row_q4_K computes them: d·sc and
// min·m for each.
func kScales(j int, scales []byte, d, min float32) (d1, m1, d2, m2 float32) {
	sc, m := scaleMinK4(j+0, scales)
	d1, m1 = d*float32(sc), min*float32(m)
	sc, m = scaleMinK4(j+1, scales)
	d2, m2 = d*float32(sc), min*float32(m)
	return
}

// Q4_K: d | dmin | scales[12] | qs[128].
func refQ4_K(y []float32, b []byte) {
	d := F16ToF32Ref(le16(b[0:]))
	min := F16ToF32Ref(le16(b[2:]))
	scales := b[4:16]
	q := b[16:]
	is := 0
	k := 0
	for j := 0; j < QK_K; j += 64 {
		d1, m1, d2, m2 := kScales(is, scales, d, min)
		for l := 0; l < 32; l++ {
			y[k] = float32(d1*float32(q[l]&0xF)) - m1
			k++
		}
		for l := 0; l < 32; l++ {
			y[k] = float32(d2*float32(q[l]>>4)) - m2
			k++
		}
		q = q[32:]
		is += 2
	}
}

// Q5_K: d | dmin | scales[12] | qh[32] | qs[128].
func refQ5_K(y []float32, b []byte) {
	d := F16ToF32Ref(le16(b[0:]))
	min := F16ToF32Ref(le16(b[2:]))
	scales := b[4:16]
	qh := b[16:48]
	ql := b[48:]
	is := 0
	u1, u2 := uint8(1), uint8(2)
	k := 0
	for j := 0; j < QK_K; j += 64 {
		d1, m1, d2, m2 := kScales(is, scales, d, min)
		for l := 0; l < 32; l++ {
			h := 0
			if qh[l]&u1 != 0 {
				h = 16
			}
			y[k] = float32(d1*float32(int(ql[l]&0xF)+h)) - m1
			k++
		}
		for l := 0; l < 32; l++ {
			h := 0
			if qh[l]&u2 != 0 {
				h = 16
			}
			y[k] = float32(d2*float32(int(ql[l]>>4)+h)) - m2
			k++
		}
		ql = ql[32:]
		is += 2
		u1 <<= 2
		u2 <<= 2
	}
}

// Q6_K: ql[128] | qh[64] | scales[16] (int8) | d.
func refQ6_K(y []float32, b []byte) {
	d := F16ToF32Ref(le16(b[208:]))
	ql := b[0:128]
	qh := b[128:192]
	sc := b[192:208]
	for n := 0; n < QK_K; n += 128 {
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int8(int(int8((ql[l+0]&0xF)|(((qh[l]>>0)&3)<<4))) - 32)
			q2 := int8(int(int8((ql[l+32]&0xF)|(((qh[l]>>2)&3)<<4))) - 32)
			q3 := int8(int(int8((ql[l+0]>>4)|(((qh[l]>>4)&3)<<4))) - 32)
			q4 := int8(int(int8((ql[l+32]>>4)|(((qh[l]>>6)&3)<<4))) - 32)
			y[l+0] = d * float32(int8(sc[is+0])) * float32(q1)
			y[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			y[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			y[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
		y = y[128:]
		ql = ql[64:]
		qh = qh[32:]
		sc = sc[8:]
	}
}

// Q8_K: d (float32) | qs[256] | bsums[16] (int16, not needed to decode).
func refQ8_K(y []float32, b []byte) {
	d := math.Float32frombits(le32(b[0:]))
	qs := b[4:260]
	for j := 0; j < QK_K; j++ {
		y[j] = d * float32(int8(qs[j]))
	}
}

// TQ1_0: qs[48] (five trits a byte) | qh[4] (four trits a byte) | d.
func refTQ1_0(y []float32, b []byte) {
	pow3 := [6]uint8{1, 3, 9, 27, 81, 243}
	d := F16ToF32Ref(le16(b[52:]))
	qs := b[0:48]
	qh := b[48:52]
	k := 0
	trit := func(v uint8, n int) float32 {
		q := v * pow3[n] // uint8 arithmetic wraps as in C
		xi := int16((uint16(q) * 3) >> 8)
		return float32(xi-1) * d
	}
	for j := 0; j < 48-48%32; j += 32 {
		for n := 0; n < 5; n++ {
			for m := 0; m < 32; m++ {
				y[k] = trit(qs[j+m], n)
				k++
			}
		}
	}
	for j := 48 - 48%32; j < 48; j += 16 {
		for n := 0; n < 5; n++ {
			for m := 0; m < 16; m++ {
				y[k] = trit(qs[j+m], n)
				k++
			}
		}
	}
	for n := 0; n < 4; n++ {
		for j := 0; j < 4; j++ {
			y[k] = trit(qh[j], n)
			k++
		}
	}
}

// TQ2_0: qs[64] | d.
func refTQ2_0(y []float32, b []byte) {
	d := F16ToF32Ref(le16(b[64:]))
	k := 0
	for j := 0; j < 64; j += 32 {
		for l := 0; l < 4; l++ {
			for m := 0; m < 32; m++ {
				q := int8((b[j+m] >> (l * 2)) & 3)
				y[k] = float32(q-1) * d
				k++
			}
		}
	}
}

// IQ4_NL: d | qs[16].
func refIQ4_NL(y []float32, b []byte) {
	d := F16ToF32Ref(le16(b[0:]))
	qs := b[2:]
	for j := 0; j < 16; j++ {
		y[j+0] = d * float32(kvaluesIQ4NL[qs[j]&0xf])
		y[j+16] = d * float32(kvaluesIQ4NL[qs[j]>>4])
	}
}

// IQ4_XS: d | scales_h (uint16) | scales_l[4] | qs[128].
func refIQ4_XS(y []float32, b []byte) {
	d := F16ToF32Ref(le16(b[0:]))
	scalesH := le16(b[2:])
	scalesL := b[4:8]
	qs := b[8:]
	for ib := 0; ib < QK_K/32; ib++ {
		ls := int((scalesL[ib/2]>>(4*(ib%2)))&0xf) | int(((scalesH>>(2*ib))&3)<<4)
		dl := d * float32(ls-32)
		for j := 0; j < 16; j++ {
			y[j+0] = dl * float32(kvaluesIQ4NL[qs[j]&0xf])
			y[j+16] = dl * float32(kvaluesIQ4NL[qs[j]>>4])
		}
		y = y[32:]
		qs = qs[16:]
	}
}

// MXFP4: e (E8M0) | qs[16].
func refMXFP4(y []float32, b []byte) {
	d := E8M0ToF32Half(b[0])
	qs := b[1:]
	for j := 0; j < 16; j++ {
		x0 := kvaluesMXFP4[qs[j]&0x0F]
		x1 := kvaluesMXFP4[qs[j]>>4]
		y[j+0] = float32(x0) * d
		y[j+16] = float32(x1) * d
	}
}

// Q1_0: d | qs[16], 128 signs.
func refQ1_0(y []float32, b []byte) {
	d := F16ToF32Ref(le16(b[0:]))
	negD := -d
	qs := b[2:]
	for j := 0; j < 128; j++ {
		if (qs[j/8]>>(j%8))&1 != 0 {
			y[j] = d
		} else {
			y[j] = negD
		}
	}
}

// Q2_0: d | qs[16], 64 two-bit values (0..3 → -1..2).
func refQ2_0(y []float32, b []byte) {
	d := F16ToF32Ref(le16(b[0:]))
	qs := b[2:]
	for j := 0; j < 64; j++ {
		q := (qs[j/4] >> ((j % 4) * 2)) & 0x03
		y[j] = float32(int(q)-1) * d
	}
}
