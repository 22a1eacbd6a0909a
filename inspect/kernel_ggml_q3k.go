package inspect

import (
	"encoding/binary"

	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// The integer kernel of Q3_K (super-block: 32 bytes of high bits hmask, 64
// bytes of 2-bit quants qs, twelve bytes of sixteen 6-bit scales, fp16 d;
// sixteen sub-blocks of 16 values). dequantize_row_q3_K computes value l of
// sub-block j = 8h + 2k + s (h the 128-value half, k the bit pair, s the
// 16-byte half of a 32-byte group) as float32(d·(sc − 32)) · float32(q'),
// sc the 6-bit scale j (q3kScales) and q' = q − 4·(1 − m) in [−4, 3], q bit
// pair k of qs[32h + 16s + l] and m bit 4h + k of hmask[16s + l].
//
// Exact: d = md·2^e with |md| < 2^11, so d·(sc − 32) is md·(sc − 32)·2^e,
// |md·(sc − 32)| ≤ 2047·32 < 2^16 units, and times q' at most 2047·32·4 <
// 2^18 units: neither product rounds in float32, nor underflows (a nonzero
// value is at least 2^−24). It is intQ6_K's structure, (d·sc)·q with sc − 32
// for sc and q' for q: over the unit 2^e a sub-block adds A·Σq' and A²·Σq'²
// (A = md·(sc − 32)) to the super-block's sums, and the super-block adds
// md·Σ(sc − 32)·Σq' and md²·Σ(sc − 32)²·Σq'² (q3kSuper: below 2^15 and 2^22,
// the products below 2^26 and 2^44) through intQ6_K's addSuper. A zero value
// has the sign of d XOR that of sc − 32 XOR that of q' (float32(0) is +0): a
// value with q' = 0 and sc ≠ 32 is −0 when d and sc − 32 differ in sign; in
// a sub-block with sc = 32 every value is a zero, of d's sign where q' ≥ 0
// (the high bit set) and the other where q' < 0, so no sub-block needs the
// value-by-value fold. A super-block with d = ±0 is folded value by value;
// a non-finite d hands the pass back.
//
// The sums come a batch of 16 super-blocks at a time: each sub-block's
// q3kSums word (Σc with c = q' + 4, its zeros, Σq'², its values with q' ≥ 0)
// from ggmlSumsQ3_K (AVX2, kernel_ggml_q3k_amd64.s, where it runs; else
// ggmlSumsQ3_KGo, from the sub-block's bit planes), then each super-block's
// q6kSuper from its words and scales (ggmlSupersQ3_K: AVX2, or q3kSuper).
// The extremes are md·(sc − 32) times a sub-block's least and greatest q',
// read (q3kRange) only when the super-block's bound and then the
// sub-block's range could extend the pass's, as intQ6_K's. The plain twin,
// codes read one by one and the zero-scale sub-blocks folded value by value
// as ggml computes them, is in the tests (TestGGMLQ3K holds the two to each
// other bit for bit; TestGGMLSumsQ3K the vector loops to their Go twins).

// intQ3_K is the integer kernel of Q3_K.
func intQ3_K(src []byte) (Acc, bool) {
	f := newIntFold()
	var sums [ggmlSumsBatch]uint64
	const batch = ggmlSumsBatch / 16 // super-blocks
	var scales [2 * batch]uint64     // q3kScales of each
	var supers [batch]q6kSuper
	i := 0 // the block's index in the batch (its first word in sums, over 16)
	for off := 0; off+110 <= len(src); off, i = off+110, i+1 {
		if i == batch {
			i = 0
		}
		if i == 0 {
			part := src[off:min(off+110*batch, len(src))]
			ggmlSumsQ3_K(part, sums[:])
			for k := 0; 110*k+110 <= len(part); k++ {
				scales[2*k], scales[2*k+1] = q3kScales((*[12]byte)(part[110*k+96:]))
			}
			ggmlSupersQ3_K(scales[:], sums[:], supers[:len(part)/110])
		}
		b := (*[110]byte)(src[off:])
		hd := binary.LittleEndian.Uint16(b[108:])
		if !f16Finite(hd) {
			return Acc{}, false
		}
		md, e := f16Parts(hd)
		if md == 0 {
			f.q3kValues(b, hd)
			continue
		}
		u := pow2(e)
		r := &supers[i]
		f.addSuper(md, u, r)
		// The super-block's values lie within ±4·|md|·max|sc − 32| units:
		// look at its sub-blocks' extremes only when that could extend
		// the pass's.
		if bound := 4 * abs64(md) * int64(r.amax); float64(-bound)*u < f.lo || float64(bound)*u > f.hi {
			f.q3kExtremes(b, md, u, scales[2*i], scales[2*i+1])
		}
	}
	return f.acc()
}

// q3kScales unpacks the sixteen 6-bit scales of a Q3_K super-block as
// dequantize_row_q3_K does (through four little-endian words): scale j is
// byte j of lo (j < 8) or byte j − 8 of hi. Its low four bits are nibble
// j>>3 of byte j&7, its high two bits pair j>>2 of byte 8 + j&3.
func q3kScales(s *[12]byte) (lo, hi uint64) {
	const low4, low2 = 0x0f0f0f0f0f0f0f0f, 0x03030303
	a, t := binary.LittleEndian.Uint64(s[0:]), uint64(binary.LittleEndian.Uint32(s[8:]))
	lo = a&low4 | (t&low2|(t>>2&low2)<<32)<<4
	hi = a>>4&low4 | (t>>4&low2|(t>>6&low2)<<32)<<4
	return lo, hi
}

// q3kScale is sc − 32 for scale j of the words q3kScales gives.
func q3kScale(lo, hi uint64, j int) int64 {
	w := lo
	if j >= 8 {
		w = hi
	}
	return int64(byte(w>>(8*uint(j&7)))) - 32
}

// q3kCode is q' (in [−4, 3]) of value l of sub-block j of a Q3_K
// super-block, as dequantize_row_q3_K reads it.
func q3kCode(b *[110]byte, j, l int) int64 {
	h, k, s := j>>3, j>>1&3, j&1
	q := b[32+32*h+16*s+l] >> (2 * k) & 3
	m := b[16*s+l] >> (4*h + k) & 1
	return int64(q) + 4*int64(m) - 4
}

// q3kPlanes are the bit planes of sub-block j of a Q3_K super-block: bits 0
// and 1 of byte i hold, for values i and i + 8, the low (a) and high (b) bit
// of q and the high bit m, so that q' = a + 2b + 4m − 4.
func q3kPlanes(b *[110]byte, j int) (a, bb, m uint64) {
	h, k, s := uint(j>>3), uint(j>>1&3), uint(j&1)
	x := binary.LittleEndian.Uint64(b[32+32*h+16*s:]) >> (2 * k)
	y := binary.LittleEndian.Uint64(b[40+32*h+16*s:]) >> (2 * k)
	hx := binary.LittleEndian.Uint64(b[16*s:]) >> (4*h + k)
	hy := binary.LittleEndian.Uint64(b[16*s+8:]) >> (4*h + k)
	const k1, k2 = 0x0101010101010101, 0x0202020202020202
	return x&k1 | y<<1&k2, x>>1&k1 | y&k2, hx&k1 | hy<<1&k2
}

// ggmlSumsQ3_K writes the q3kSums words of the sixteen sub-blocks of each
// whole Q3_K super-block of src to out (word 16i + j for sub-block j of
// super-block i): Σc (c = q' + 4, in [0, 7]; at most 112) in bits 0–15, how
// many q' are 0 in bits 16–31, Σq'² (at most 256) in bits 32–47, how many
// q' are at least 0 (the high bit m set) in bits 48–63.
func ggmlSumsQ3_K(src []byte, out []uint64) {
	if ggmlSumsAsmOK {
		ggmlSumsQ3_KVec(src, out)
		return
	}
	ggmlSumsQ3_KGo(src, out)
}

// ggmlSumsQ3_KGo is the Go twin of ggmlSumsQ3_K's vector loop, from the
// sub-blocks' bit planes: with pa, pb, pm the counts of a sub-block's planes
// a, b, m (q3kPlanes) and pab, pam, pbm those of their ANDs, Σc = pa + 2pb +
// 4pm and Σq'² = Σ(a + 2b + 4m − 4)² = 4pab + 8pam + 16pbm + 256 − 16pm −
// 7pa − 12pb (a² = a, m² = m); q' is 0 where m is set and a, b clear.
func ggmlSumsQ3_KGo(src []byte, out []uint64) {
	const k1, k2 = 0x0101010101010101, 0x0202020202020202
	for i := 0; 110*i+110 <= len(src); i++ {
		b := (*[110]byte)(src[110*i:])
		w := (*[16]uint64)(out[16*i:])
		for g := uint(0); g < 4; g++ { // the 16-byte groups: half h = g>>1, s = g&1
			h, s := g>>1, g&1
			x := binary.LittleEndian.Uint64(b[32+32*h+16*s:])
			y := binary.LittleEndian.Uint64(b[40+32*h+16*s:])
			hx := binary.LittleEndian.Uint64(b[16*s:]) >> (4 * h)
			hy := binary.LittleEndian.Uint64(b[16*s+8:]) >> (4 * h)
			for k := uint(0); k < 4; k++ { // sub-block 8h + 2k + s
				A, B, M := x&k1|y<<1&k2, x>>1&k1|y&k2, hx&k1|hy<<1&k2
				pa, pb, pm := planeCount(A), planeCount(B), planeCount(M)
				pab, pam, pbm := planeCount(A&B), planeCount(A&M), planeCount(B&M)
				z := planeCount(M &^ (A | B))
				sq := 4*pab + 8*pam + 16*pbm + 256 - 16*pm - 7*pa - 12*pb
				w[8*h+2*k+s] = uint64(pa+2*pb+4*pm) | uint64(z)<<16 | uint64(sq)<<32 | uint64(pm)<<48
				x, y, hx, hy = x>>2, y>>2, hx>>1, hy>>1
			}
		}
	}
}

// ggmlSupersQ3_K writes the q3kSuper of each super-block of a batch to out,
// from its scales (two words each, as q3kScales gives them) and its sixteen
// q3kSums words in words.
func ggmlSupersQ3_K(scales, words []uint64, out []q6kSuper) {
	if ggmlSumsAsmOK {
		ggmlSupersQ3_KVec(scales, words, out)
		return
	}
	ggmlSupersQ3_KGo(scales, words, out)
}

// ggmlSupersQ3_KGo is the Go twin of ggmlSupersQ3_K's vector loop.
func ggmlSupersQ3_KGo(scales, words []uint64, out []q6kSuper) {
	for i := range out {
		out[i] = q3kSuper((*[16]uint64)(words[16*i:]), scales[2*i], scales[2*i+1])
	}
}

// q3kSuper is what intQ3_K needs of a Q3_K super-block with d nonzero (w
// its sixteen q3kSums words, lo, hi its scales, q3kScales), as q6kSuper is
// intQ6_K's: over its sixteen sub-blocks, Σ(sc − 32)·Σq' (Σq' = Σc − 64) and
// Σ(sc − 32)²·Σq'², its zero values, whether some zero value has the sign of
// d (zpos) or the other (zneg), and the largest |sc − 32|. In a sub-block
// with sc = 32 every value is a zero (see the file's comment): d's sign
// where q' ≥ 0, the other where q' < 0.
func q3kSuper(w *[16]uint64, lo, hi uint64) q6kSuper {
	var s1, s2, amax int64
	var zeros, zneg, zpos uint64
	for j := 0; j < 16; j++ {
		if j&7 == 0 {
			lo, hi = hi, lo // the scales of sub-blocks 8 to 15 once 0 to 7 are done
		}
		sc := int64(hi&63) - 32
		hi >>= 8
		t := w[j]
		c1, z, sq, pm := int64(t&0xffff), t>>16&0xffff, int64(t>>32&0xffff), t>>48
		s1 += sc * (c1 - 64)
		s2 += sc * sc * sq
		if sc == 0 {
			zeros += 16
			zneg |= b2u(pm < 16)
			zpos |= b2u(pm > 0)
			continue
		}
		some, neg := uint64(-int64(z))>>63, uint64(sc)>>63
		zeros += z
		zneg |= some & neg
		zpos |= some &^ neg
		amax = max(amax, sc, -sc)
	}
	return q6kSuper{s1: s1, s2: s2, zeros: zeros, zneg: zneg, zpos: zpos, amax: uint64(amax)}
}

// planeCount is the number of bits set in a plane (bits 0 and 1 of each
// byte): the bytes' two bits added, then the bytes by a multiplication (a
// count of at most 16 in the top byte), without the branch bits.OnesCount64
// needs on CPUs the build does not assume POPCNT of.
func planeCount(p uint64) int64 {
	const k1 = 0x0101010101010101
	return int64((p&k1 + p>>1&k1) * k1 >> 56)
}

// q3kRange is the least and the greatest q' of sub-block j of a Q3_K
// super-block, from its planes: the greatest code a + 2b + 4m bit by bit
// from the top (m set if some value has it, then b among those, then a),
// the least likewise with the bits clear.
func q3kRange(b *[110]byte, j int) (qlo, qhi int64) {
	const all = 0x0303030303030303
	A, B, M := q3kPlanes(b, j)
	top, c := uint64(all), int64(0)
	for i, p := range [3]uint64{M, B, A} {
		if p&top != 0 {
			top &= p
			c += 4 >> i
		}
	}
	bot, d := uint64(all), int64(0)
	for i, p := range [3]uint64{M, B, A} {
		if bot&^p != 0 {
			bot &^= p
		} else {
			d += 4 >> i
		}
	}
	return d - 4, c - 4
}

// q3kExtremes folds the extremes of the sub-blocks of a Q3_K super-block (d
// = md·u, scales lo, hi), reading a sub-block's quants only when its range,
// −4·A to 3·A units (A = md·(sc − 32)), could extend the pass's (a sub-block
// with sc = 32 holds only zeros: its extremes are 0).
func (f *intFold) q3kExtremes(b *[110]byte, md int64, u float64, lo, hi uint64) {
	fl, fh := f.lo/u, f.hi/u // the pass's extremes in units (exact: u is a power of two)
	for j := 0; j < 16; j++ {
		if j&7 == 0 {
			lo, hi = hi, lo // the scales of sub-blocks 8 to 15 once 0 to 7 are done
		}
		A := md * (int64(hi&63) - 32)
		hi >>= 8
		if x, y := float64(-4*A), float64(3*A); min(x, y) >= fl && max(x, y) <= fh {
			continue
		}
		qlo, qhi := q3kRange(b, j)
		x, y := A*qlo, A*qhi
		if x > y {
			x, y = y, x
		}
		fl, fh = min(fl, float64(x)), max(fh, float64(y))
		f.lo, f.hi = min(f.lo, float64(x)*u), max(f.hi, float64(y)*u)
	}
}

// q3kValues folds the 256 values of a Q3_K super-block (scale d, the fp16
// pattern hd) one by one, computed as ggml does.
func (f *intFold) q3kValues(b *[110]byte, hd uint16) {
	d := ggml.F16ToF32(hd)
	lo, hi := q3kScales((*[12]byte)(b[96:108]))
	for j := 0; j < 16; j++ {
		dl := d * float32(q3kScale(lo, hi, j))
		for l := 0; l < 16; l++ {
			f.value(dl * float32(q3kCode(b, j, l)))
		}
	}
}
