package inspect

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// The integer kernel of Q5_K (super-block: fp16 d and dmin, twelve bytes of
// 6-bit scales and minimums packed as Q4_K's, 32 bytes of fifth bits, 128
// bytes of 4-bit low parts: eight sub-blocks of 32 values
// float32(d·sc·q) − dmin·m with q in [0, 31]). It is intQ4_K's with 5-bit
// codes: code l of sub-block j = 2g + h is the nibble h of ql[32g + l] and
// bit j of qh[l] (dequantize_row_q5_K). d·sc·q is md·sc·q units of d's, at
// most 11 + 6 + 5 = 22 bits: exact; the subtraction is exact when, over the
// unit u of d and dmin, |A·q − B| is below 2^24 for every q in [0, 31]
// (exactAffine with 31), and the zero values, their signs and the extremes
// follow as for Q4_K. A super-block whose sub-blocks are all exact is folded
// by q5kFast from the factored sums, any other by q5kSubs (the same int64
// sums over its exact sub-blocks, the others value by value as ggml computes
// them; TestGGMLQ5KFast and the fuzz target hold the two to each other bit
// for bit).

// intQ5_K is the integer kernel of Q5_K.
func intQ5_K(src []byte) (Acc, bool) {
	f := newIntFold()
	var sums [ggmlSumsBatch]uint64
	i := 0                          // the super-block's first word in sums, over 4
	const batch = ggmlSumsBatch / 4 // super-blocks
	for off := 0; off+176 <= len(src); off, i = off+176, i+1 {
		if i == batch {
			i = 0
		}
		if i == 0 {
			ggmlSumsQ5_K(src[off:min(off+176*batch, len(src))], sums[:])
		}
		b := (*[176]byte)(src[off:])
		hd, hm := binary.LittleEndian.Uint16(b[0:]), binary.LittleEndian.Uint16(b[2:])
		if !f16Finite(hd) || !f16Finite(hm) {
			return Acc{}, false
		}
		t := (*[4]uint64)(sums[4*i:])
		if !q5kFastOn || !f.q5kFastVec(b, hd, hm, t) {
			f.q5kSubs(b, hd, hm, t)
		}
	}
	return f.acc()
}

// q5kFastOn lets tests run intQ5_K with q5kSubs alone.
var q5kFastOn = true

// q5kSums packs, for index h<<8 | c (c a byte of two low parts, h its two
// fifth bits: bit 0 the low nibble's, bit 1 the high one's), the codes lo =
// c&15 | (h&1)<<4 and hi = c>>4 | (h>>1)<<4 as nibbleSums does: lo, hi, lo²
// and hi² in four 16-bit fields (added over 32 bytes, below 2^10 and 2^15).
var q5kSums = func() (t [1024]uint64) {
	for x := range t {
		c, h := uint64(x&255), uint64(x>>8)
		lo, hi := c&15|(h&1)<<4, c>>4|(h>>1)<<4
		t[x] = lo | hi<<16 | lo*lo<<32 | hi*hi<<48
	}
	return
}()

// q5kCodes8 is the codes l to l+7 of sub-block j of a Q5_K super-block, one
// to a byte.
func q5kCodes8(b *[176]byte, j, l int) uint64 {
	const ones = 0x0101010101010101
	ql := binary.LittleEndian.Uint64(b[48+32*(j>>1)+l:]) >> (4 * uint(j&1)) & (15 * ones)
	qh := binary.LittleEndian.Uint64(b[16+l:]) >> uint(j) & ones
	return ql | qh<<4
}

// q5kCode is code l of sub-block j of a Q5_K super-block, as
// dequantize_row_q5_K reads it.
func q5kCode(b *[176]byte, j, l int) int64 {
	return int64(b[48+32*(j>>1)+l]>>(4*(j&1))&15 | (b[16+l]>>j&1)<<4)
}

// q5kCount counts the codes of sub-block j equal to k (0–31), eight at a
// time as q4kCount does.
func q5kCount(b *[176]byte, j int, k byte) int {
	kk := uint64(k) * 0x0101010101010101
	n := 0
	for l := 0; l < 32; l += 8 {
		x := q5kCodes8(b, j, l) ^ kk
		n += bits.OnesCount64((x + 0x7f7f7f7f7f7f7f7f) & 0x8080808080808080)
	}
	return 32 - n
}

// q5kRange is the smallest and largest code of sub-block j: 0 and 31 when
// both occur (the byte test of q4kRange), else looked at one by one.
func q5kRange(b *[176]byte, j int) (qlo, qhi int64) {
	const ones, low7, top = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	has0, has31 := uint64(top), uint64(top)
	for l := 0; l < 32; l += 8 {
		x := q5kCodes8(b, j, l)
		has0 &= x + low7
		has31 &= (x ^ 31*ones) + low7
	}
	if has0&top != top && has31&top != top {
		return 0, 31
	}
	qlo, qhi = 31, 0
	for l := 0; l < 32; l++ {
		q := q5kCode(b, j, l)
		qlo, qhi = min(qlo, q), max(qhi, q)
	}
	return qlo, qhi
}

// q5kFast folds a Q5_K super-block (fp16 d and dmin hd, hm, finite; t its
// four q5kSums words) when each of its sub-blocks passes q5kSubs' exactness
// test, and says whether it did (false: nothing folded). It is q4kFast with
// 31 for 15: the same factored sums (Σsc·s1 below 2^19, Σsc·m·s1 below
// 2^25, Σsc²·s2 below 2^30, Σm below 2^9, Σm² below 2^15: the same packing
// holds them), the super-block's sums below 2^32 and 2^56.
func (f *intFold) q5kFast(b *[176]byte, hd, hm uint16, t *[4]uint64) bool {
	mdu, mmu, e, ok := q4kUnits(hd, hm)
	if !ok {
		return false
	}
	scw, mw := q4kUnpack((*[12]byte)(b[4:16]))
	invA := 1 / float64(mdu) // ±Inf when md is 0: then every A is 0
	var p1, p2, zs uint64    // as q4kFast's
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for j := 0; j < 8; j++ {
		sc, m := scw>>(8*j)&63, mw>>(8*j)&63
		A, B := mdu*int64(sc), mmu*int64(m)
		y := 31*A - B
		lo, hi = min(lo, -B, y), max(hi, -B, y)
		w := t[j>>1] >> (16 * uint(j&1))
		s1, s2 := w&0xffff, w>>32&0xffff
		p1 += sc * s1 * (1 + m<<24)
		p2 += sc*sc*s2 + (m|m*m<<10)<<30
		// zero values: B = A·k, k in [0, 31] (k is NaN or infinite when
		// A is 0)
		if k := float64(B) * invA * q4kInv[sc]; k > -0.5 && k < 31.5 {
			if kk := int64(k + 0.5); A*kk == B {
				if z := q5kCount(b, j, byte(kk)); z > 0 {
					zs += uint64(z) + 1<<16<<(16*b2u(B != 0))
				}
			}
		} else if A == 0 && B == 0 {
			zs += 32 + 1<<16
		}
	}
	// exact when every |B| and |31·A − B| is below 2^24 (exactAffine)
	u, ok := f.addFactored(lo, hi, p1, p2, zs, e, hd, hm, mdu, mmu, 32)
	if !ok {
		return false
	}
	if float64(lo)*u < f.lo || float64(hi)*u > f.hi {
		f.q5kExtremes(b, mdu, mmu, scw, mw, u)
	}
	return true
}

// q5kFastVec is q5kFast with the sub-block loop in vector instructions
// (q4kCoreAsm with the largest code 31) where they run, as q4kFastVec is
// q4kFast's: the same int64 sums into the same float64 additions; a
// super-block with possible zero values goes to q5kFast itself
// (TestGGMLQ5KFast holds the two to each other bit for bit).
func (f *intFold) q5kFastVec(b *[176]byte, hd, hm uint16, t *[4]uint64) bool {
	if !q5kCoreOn || !q4kCoreOK {
		return f.q5kFast(b, hd, hm, t)
	}
	mdu, mmu, e, ok := q4kUnits(hd, hm)
	if !ok {
		return false
	}
	scw, mw := q4kUnpack((*[12]byte)(b[4:16]))
	u := math.Float64frombits(uint64(e+1023) << 52) // 2^e, e in [−24, 15]
	var c q4kCore
	if q4kCoreAsm(&t[0], scw, mw, mdu, mmu, f.lo/u, f.hi/u, 31, &c) {
		return f.q5kFast(b, hd, hm, t)
	}
	if c.lo <= -1<<24 || c.hi >= 1<<24 {
		return false
	}
	s1sc, sx, s2sc, sm2, sm := int64(c.s[0]), int64(c.s[1]), int64(c.s[2]), int64(c.s[3]), int64(c.sm)
	f.n += 256
	f.sum += u * float64(mdu*s1sc-32*mmu*sm)
	f.sq += u * u * float64(mdu*mdu*s2sc-2*mdu*mmu*sx+32*mmu*mmu*sm2)
	if c.ext != 0 {
		f.q5kExtremesOf(b, mdu, mmu, scw, mw, u, c.ext)
	}
	return true
}

// q5kCoreOn lets tests run q5kFastVec as q5kFast in Go.
var q5kCoreOn = true

// q5kExtremesOf folds the extremes of the sub-blocks in mask (bit j:
// sub-block j) of a Q5_K super-block, as q5kExtremes does with those whose
// range could extend the pass's (see q4kExtremesOf: the same result).
func (f *intFold) q5kExtremesOf(b *[176]byte, mdu, mmu int64, scw, mw uint64, u float64, mask uint64) {
	xlo, xhi := int64(math.MaxInt64), int64(math.MinInt64)
	for ; mask != 0; mask &= mask - 1 {
		j := bits.TrailingZeros64(mask)
		A, B := mdu*int64(scw>>(8*j)&63), mmu*int64(mw>>(8*j)&63)
		qlo, qhi := q5kRange(b, j)
		a, z := A*qlo-B, A*qhi-B
		if a > z {
			a, z = z, a
		}
		xlo, xhi = min(xlo, a), max(xhi, z)
	}
	f.lo, f.hi = min(f.lo, float64(xlo)*u), max(f.hi, float64(xhi)*u)
}

// q5kExtremes folds the extremes of the sub-blocks of a Q5_K super-block
// (A = mdu·sc, B = mmu·m in units u), reading a sub-block's codes only when
// its range could extend the pass's, as q5kSubs does.
func (f *intFold) q5kExtremes(b *[176]byte, mdu, mmu int64, scw, mw uint64, u float64) {
	xlo, xhi := int64(math.MaxInt64), int64(math.MinInt64)
	fl, fh := f.lo/u, f.hi/u
	for j := 0; j < 8; j++ {
		A, B := mdu*int64(scw>>(8*j)&63), mmu*int64(mw>>(8*j)&63)
		lo, hi := -B, 31*A-B
		if A < 0 {
			lo, hi = hi, lo
		}
		if float64(lo) >= fl && float64(hi) <= fh {
			continue
		}
		qlo, qhi := q5kRange(b, j)
		a, z := A*qlo-B, A*qhi-B
		if a > z {
			a, z = z, a
		}
		xlo, xhi = min(xlo, a), max(xhi, z)
		fl, fh = min(fl, float64(a)), max(fh, float64(z))
	}
	if xlo <= xhi {
		f.lo, f.hi = min(f.lo, float64(xlo)*u), max(f.hi, float64(xhi)*u)
	}
}

// q5kSubs folds a Q5_K super-block (fp16 d and dmin hd, hm, finite; t its
// four q5kSums words) sub-block by sub-block as q4kSubs folds a Q4_K one:
// over its exact sub-blocks as int64 sums in units, the others value by
// value.
func (f *intFold) q5kSubs(b *[176]byte, hd, hm uint16, t *[4]uint64) {
	md, ed := f16Parts(hd)
	mm, em := f16Parts(hm)
	if md == 0 {
		ed = em
	} else if mm == 0 {
		em = ed
	}
	e := min(ed, em)
	sa, sb := uint(ed-e), uint(em-e)
	u := pow2(e)
	negZero := hd&0x8000 != 0 && hm&0x8000 == 0
	var sum, sq int64
	n, zeros := 0, 0
	xlo, xhi := int64(math.MaxInt64), int64(math.MinInt64)
	fl, fh := f.lo/u, f.hi/u
	scales := (*[12]byte)(b[4:16])
	for j := 0; j < 8; j++ {
		sc, m := q4kScaleMin(j, scales)
		A, B := md*sc, mm*m
		if sa > 20 || sb > 20 || !exactAffine(A<<sa, B<<sb, 31) {
			f.q5kValues(b, ggml.F16ToF32(hd), ggml.F16ToF32(hm), sc, m, j)
			continue
		}
		A, B = A<<sa, B<<sb
		w := t[j>>1] >> (16 * uint(j&1))
		s1, s2 := int64(w&0xffff), int64(w>>32&0xffff)
		z := 0
		switch {
		case A == 0 && B == 0:
			z = 32
		case A != 0 && (B == 0 || (A > 0) == (B > 0)) && abs64(B) <= 31*abs64(A) && B%A == 0:
			k0 := B / A
			for l := 0; l < 32; l++ {
				z += int(b2u(q5kCode(b, j, l) == k0))
			}
		} // A == 0, B ≠ 0: every value is −m1, not zero
		if z > 0 {
			zeros += z
			if B == 0 && negZero {
				f.negZero = 1
			} else {
				f.posZero = 1
			}
		}
		// Σ(A·q − B) and Σ(A·q − B)²: the first below 2^29, the second
		// below 2^53, the terms below 2^56.
		n += 32
		sum += A*s1 - 32*B
		sq += A*A*s2 - 2*A*B*s1 + 32*B*B
		lo, hi := -B, 31*A-B
		if A < 0 {
			lo, hi = hi, lo
		}
		if float64(lo) < fl || float64(hi) > fh {
			qlo, qhi := int64(31), int64(0)
			for l := 0; l < 32; l++ {
				q := q5kCode(b, j, l)
				qlo, qhi = min(qlo, q), max(qhi, q)
			}
			a, z := A*qlo-B, A*qhi-B
			if a > z {
				a, z = z, a
			}
			xlo, xhi = min(xlo, a), max(xhi, z)
			fl, fh = min(fl, float64(a)), max(fh, float64(z))
		}
	}
	f.n += uint64(n)
	f.zeros += uint64(zeros)
	f.sum += u * float64(sum)
	f.sq += u * u * float64(sq)
	if xlo <= xhi {
		f.lo, f.hi = min(f.lo, float64(xlo)*u), max(f.hi, float64(xhi)*u)
	}
}

// q5kValues folds the 32 values of sub-block j of a Q5_K super-block
// (scale sc, minimum m) one by one, computed as ggml does.
func (f *intFold) q5kValues(b *[176]byte, d, dmin float32, sc, m int64, j int) {
	d1, m1 := d*float32(sc), dmin*float32(m)
	var tab [32]float32
	for k := range tab {
		tab[k] = float32(d1*float32(k)) - m1
	}
	for l := 0; l < 32; l++ {
		f.value(tab[q5kCode(b, j, l)])
	}
}
