package ggml

import (
	"encoding/binary"
	"math"
)

// The fast dequantizers: many blocks at a time, bounds checks hoisted, and
// for the small code books a table of the block's possible values built
// with exactly the reference's operations, then indexed. They are held equal
// to the reference bit for bit by the tests.

type fastFunc func(dst []float32, src []byte, blocks int)

var fast = map[Type]fastFunc{
	F32: func(dst []float32, src []byte, n int) {
		for i := range n {
			dst[i] = math.Float32frombits(le32(src[4*i:]))
		}
	},
	F16: func(dst []float32, src []byte, n int) {
		for i := range n {
			dst[i] = f16Table[le16(src[2*i:])]
		}
	},
	BF16: func(dst []float32, src []byte, n int) {
		for i := range n {
			dst[i] = BF16ToF32(le16(src[2*i:]))
		}
	},
	F64: func(dst []float32, src []byte, n int) {
		for i := range n {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	},
	I8: func(dst []float32, src []byte, n int) {
		for i := range n {
			dst[i] = float32(int8(src[i]))
		}
	},
	I16: func(dst []float32, src []byte, n int) {
		for i := range n {
			dst[i] = float32(int16(le16(src[2*i:])))
		}
	},
	I32: func(dst []float32, src []byte, n int) {
		for i := range n {
			dst[i] = float32(int32(le32(src[4*i:])))
		}
	},
	I64: func(dst []float32, src []byte, n int) {
		for i := range n {
			dst[i] = float32(int64(binary.LittleEndian.Uint64(src[8*i:])))
		}
	},
	Q4_0: fastQ4_0, Q4_1: fastQ4_1, Q5_0: fastQ5_0, Q5_1: fastQ5_1,
	Q8_0: fastQ8_0, Q8_1: fastQ8_1,
	Q2_K: fastQ2_K, Q3_K: fastQ3_K, Q4_K: fastQ4_K, Q5_K: fastQ5_K, Q6_K: fastQ6_K, Q8_K: fastQ8_K,
	TQ1_0: fastTQ1_0, TQ2_0: fastTQ2_0, IQ4_NL: fastIQ4_NL, IQ4_XS: fastIQ4_XS,
	MXFP4: fastMXFP4, Q1_0: fastQ1_0, Q2_0: fastQ2_0,
}

func fastQ4_0(dst []float32, src []byte, n int) {
	var tab [16]float32
	for i := range n {
		b := src[18*i : 18*i+18]
		y := dst[32*i : 32*i+32]
		d := f16Table[le16(b)]
		for k := range tab {
			tab[k] = float32(k-8) * d
		}
		spread4(y, b[2:18], &tab)
	}
}

func fastQ4_1(dst []float32, src []byte, n int) {
	var tab [16]float32
	for i := range n {
		b := src[20*i : 20*i+20]
		y := dst[32*i : 32*i+32]
		d, m := f16Table[le16(b)], f16Table[le16(b[2:])]
		for k := range tab {
			tab[k] = float32(float32(k)*d) + m
		}
		spread4(y, b[4:20], &tab)
	}
}

func fastQ5_0(dst []float32, src []byte, n int) {
	var tab [32]float32
	for i := range n {
		b := src[22*i : 22*i+22]
		y := dst[32*i : 32*i+32]
		d := f16Table[le16(b)]
		for k := range tab {
			tab[k] = float32(k-16) * d
		}
		qh := le32(b[2:])
		qs := b[6:22]
		for j := 0; j < 16; j++ {
			y[j] = tab[(qs[j]&15)|uint8((qh>>j)<<4&0x10)]
			y[j+16] = tab[(qs[j]>>4)|uint8((qh>>(j+12))&0x10)]
		}
	}
}

func fastQ5_1(dst []float32, src []byte, n int) {
	var tab [32]float32
	for i := range n {
		b := src[24*i : 24*i+24]
		y := dst[32*i : 32*i+32]
		d, m := f16Table[le16(b)], f16Table[le16(b[2:])]
		for k := range tab {
			tab[k] = float32(float32(k)*d) + m
		}
		qh := le32(b[4:])
		qs := b[8:24]
		for j := 0; j < 16; j++ {
			y[j] = tab[(qs[j]&15)|uint8((qh>>j)<<4&0x10)]
			y[j+16] = tab[(qs[j]>>4)|uint8((qh>>(j+12))&0x10)]
		}
	}
}

func fastQ8_0(dst []float32, src []byte, n int) { fastQ8(dst, src, n, 34, 2) }

func fastQ8_1(dst []float32, src []byte, n int) { fastQ8(dst, src, n, 36, 4) }

// fastQ8 decodes blocks of size bytes: an fp16 d first, 32 int8 quants at qs.
func fastQ8(dst []float32, src []byte, n, size, qs int) {
	for i := range n {
		b := src[size*i : size*i+size]
		y := dst[32*i : 32*i+32]
		d := f16Table[le16(b)]
		q := b[qs : qs+32]
		for j := range y {
			y[j] = float32(int8(q[j])) * d
		}
	}
}

func fastQ2_K(dst []float32, src []byte, n int) {
	for i := range n {
		b := src[84*i : 84*i+84]
		y := dst[256*i : 256*i+256]
		d, min := f16Table[le16(b[80:])], f16Table[le16(b[82:])]
		scales := b[0:16]
		for half := 0; half < 2; half++ {
			q := b[16+32*half : 48+32*half]
			for j := 0; j < 8; j++ { // 8 groups of 16 per half
				sc := scales[8*half+j]
				dl, ml := d*float32(sc&0xF), min*float32(sc>>4)
				var tab [4]float32
				for k := range tab {
					tab[k] = float32(dl*float32(k)) - ml
				}
				shift := uint(2 * (j / 2))
				qq := q[16*(j%2) : 16*(j%2)+16]
				out := y[128*half+16*j : 128*half+16*j+16]
				for l := range out {
					out[l] = tab[(qq[l]>>shift)&3]
				}
			}
		}
	}
}

func fastQ3_K(dst []float32, src []byte, n int) {
	for i := range n {
		b := src[110*i : 110*i+110]
		y := dst[256*i : 256*i+256]
		dAll := f16Table[le16(b[108:])]
		hm := b[0:32]
		scales := q3kScales(b[96:108])
		for half := 0; half < 2; half++ {
			q := b[32+32*half : 64+32*half]
			for j := 0; j < 8; j++ {
				dl := dAll * float32(int(scales[8*half+j])-32)
				// index: the two low bits, plus 4 when the high bit is set
				var tab [8]float32
				for k := range tab {
					h := 4
					if k >= 4 {
						h = 0
					}
					tab[k] = dl * float32(k&3-h)
				}
				shift := uint(2 * (j / 2))
				off := 16 * (j % 2)
				qq, hh := q[off:off+16], hm[off:off+16]
				out := y[128*half+16*j : 128*half+16*j+16]
				hb := uint(4*half + j/2)
				for l := range out {
					out[l] = tab[(qq[l]>>shift)&3|(hh[l]>>hb&1)<<2]
				}
			}
		}
	}
}

func fastQ4_K(dst []float32, src []byte, n int) {
	var lo, hi [16]float32
	for i := range n {
		b := (*[144]byte)(src[144*i:])
		y := (*[256]float32)(dst[256*i:])
		d, min := f16Table[le16(b[0:])], f16Table[le16(b[2:])]
		scales := b[4:16]
		for g := 0; g < 4; g++ {
			d1, m1, d2, m2 := kScales(2*g, scales, d, min)
			for k := range lo {
				lo[k] = float32(d1*float32(k)) - m1
				hi[k] = float32(d2*float32(k)) - m2
			}
			q := (*[32]byte)(b[16+32*g:])
			o1 := (*[32]float32)(y[64*g:])
			o2 := (*[32]float32)(y[64*g+32:])
			for l := range q {
				o1[l] = lo[q[l]&15]
				o2[l] = hi[q[l]>>4]
			}
		}
	}
}

func fastQ5_K(dst []float32, src []byte, n int) {
	var lo, hi [32]float32
	for i := range n {
		b := src[176*i : 176*i+176]
		y := dst[256*i : 256*i+256]
		d, min := f16Table[le16(b)], f16Table[le16(b[2:])]
		scales := b[4:16]
		qh := b[16:48]
		for g := 0; g < 4; g++ {
			d1, m1, d2, m2 := kScales(2*g, scales, d, min)
			for k := range lo {
				lo[k] = float32(d1*float32(k)) - m1
				hi[k] = float32(d2*float32(k)) - m2
			}
			ql := b[48+32*g : 80+32*g]
			out := y[64*g : 64*g+64]
			s1, s2 := uint(2*g), uint(2*g+1)
			for l := 0; l < 32; l++ {
				out[l] = lo[(ql[l]&15)|(qh[l]>>s1&1)<<4]
				out[l+32] = hi[(ql[l]>>4)|(qh[l]>>s2&1)<<4]
			}
		}
	}
}

func fastQ6_K(dst []float32, src []byte, n int) {
	for i := range n {
		b := src[210*i : 210*i+210]
		y := dst[256*i : 256*i+256]
		d := f16Table[le16(b[208:])]
		for half := 0; half < 2; half++ {
			ql := b[64*half : 64*half+64]
			qh := b[128+32*half : 160+32*half]
			sc := b[192+8*half : 200+8*half]
			out := y[128*half : 128*half+128]
			for is := 0; is < 2; is++ {
				d1 := d * float32(int8(sc[is+0]))
				d2 := d * float32(int8(sc[is+2]))
				d3 := d * float32(int8(sc[is+4]))
				d4 := d * float32(int8(sc[is+6]))
				for l := 16 * is; l < 16*is+16; l++ {
					h := qh[l]
					out[l+0] = d1 * float32(int((ql[l]&0xF)|(h&3)<<4)-32)
					out[l+32] = d2 * float32(int((ql[l+32]&0xF)|(h>>2&3)<<4)-32)
					out[l+64] = d3 * float32(int((ql[l]>>4)|(h>>4&3)<<4)-32)
					out[l+96] = d4 * float32(int((ql[l+32]>>4)|(h>>6&3)<<4)-32)
				}
			}
		}
	}
}

func fastQ8_K(dst []float32, src []byte, n int) {
	for i := range n {
		b := src[292*i : 292*i+292]
		y := dst[256*i : 256*i+256]
		d := math.Float32frombits(le32(b))
		qs := b[4:260]
		for j := range y {
			y[j] = d * float32(int8(qs[j]))
		}
	}
}

func fastTQ1_0(dst []float32, src []byte, n int) {
	// trit[v*?]: the value of trit n of byte v, as the reference computes it
	pow3 := [5]uint8{1, 3, 9, 27, 81}
	for i := range n {
		b := src[54*i : 54*i+54]
		y := dst[256*i : 256*i+256]
		d := f16Table[le16(b[52:])]
		var tab [3]float32
		for k := range tab {
			tab[k] = float32(k-1) * d
		}
		k := 0
		put := func(v uint8, p uint8) {
			q := v * p
			y[k] = tab[(uint16(q)*3)>>8]
			k++
		}
		for _, r := range [][2]int{{0, 32}, {32, 16}} {
			for _, p := range pow3 {
				for m := 0; m < r[1]; m++ {
					put(b[r[0]+m], p)
				}
			}
		}
		for _, p := range pow3[:4] {
			for j := 0; j < 4; j++ {
				put(b[48+j], p)
			}
		}
	}
}

func fastTQ2_0(dst []float32, src []byte, n int) {
	for i := range n {
		b := src[66*i : 66*i+66]
		y := dst[256*i : 256*i+256]
		d := f16Table[le16(b[64:])]
		var tab [4]float32
		for k := range tab {
			tab[k] = float32(k-1) * d
		}
		for j := 0; j < 2; j++ {
			qs := b[32*j : 32*j+32]
			for l := 0; l < 4; l++ {
				out := y[128*j+32*l : 128*j+32*l+32]
				for m := range out {
					out[m] = tab[(qs[m]>>(2*l))&3]
				}
			}
		}
	}
}

func fastIQ4_NL(dst []float32, src []byte, n int) {
	var tab [16]float32
	for i := range n {
		b := src[18*i : 18*i+18]
		y := dst[32*i : 32*i+32]
		d := f16Table[le16(b)]
		for k := range tab {
			tab[k] = d * float32(kvaluesIQ4NL[k])
		}
		spread4(y, b[2:18], &tab)
	}
}

func fastIQ4_XS(dst []float32, src []byte, n int) {
	var tab [16]float32
	for i := range n {
		b := src[136*i : 136*i+136]
		y := dst[256*i : 256*i+256]
		d := f16Table[le16(b)]
		scalesH := le16(b[2:])
		for ib := 0; ib < 8; ib++ {
			ls := int((b[4+ib/2]>>(4*(ib%2)))&0xf) | int(((scalesH>>(2*ib))&3)<<4)
			dl := d * float32(ls-32)
			for k := range tab {
				tab[k] = dl * float32(kvaluesIQ4NL[k])
			}
			spread4(y[32*ib:32*ib+32], b[8+16*ib:24+16*ib], &tab)
		}
	}
}

func fastMXFP4(dst []float32, src []byte, n int) {
	var tab [16]float32
	for i := range n {
		b := src[17*i : 17*i+17]
		y := dst[32*i : 32*i+32]
		d := E8M0ToF32Half(b[0])
		for k := range tab {
			tab[k] = float32(kvaluesMXFP4[k]) * d
		}
		spread4(y, b[1:17], &tab)
	}
}

func fastQ1_0(dst []float32, src []byte, n int) {
	for i := range n {
		b := src[18*i : 18*i+18]
		y := dst[128*i : 128*i+128]
		d := f16Table[le16(b)]
		tab := [2]float32{-d, d}
		for j := 0; j < 16; j++ {
			q := b[2+j]
			out := y[8*j : 8*j+8]
			for k := range out {
				out[k] = tab[(q>>k)&1]
			}
		}
	}
}

func fastQ2_0(dst []float32, src []byte, n int) {
	for i := range n {
		b := src[18*i : 18*i+18]
		y := dst[64*i : 64*i+64]
		d := f16Table[le16(b)]
		var tab [4]float32
		for k := range tab {
			tab[k] = float32(k-1) * d
		}
		for j := 0; j < 16; j++ {
			q := b[2+j]
			out := y[4*j : 4*j+4]
			for k := range out {
				out[k] = tab[(q>>(2*k))&3]
			}
		}
	}
}

// spread4 writes the 32 values of 16 bytes of nibbles through tab: the low
// nibbles to y[0:16], the high ones to y[16:32] (the order of every 32-value
// 4-bit block of ggml).
func spread4(y []float32, qs []byte, tab *[16]float32) {
	y, qs = y[:32], qs[:16]
	for j := range qs {
		y[j] = tab[qs[j]&15]
		y[j+16] = tab[qs[j]>>4]
	}
}
