package inspect

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// The integer kernels of the ggml block types whose dequantized values are,
// exactly, a scale times a small integer (statsBlock hands them a pass of
// whole blocks). ggml computes each value in float32, but for these types no
// operation rounds, so the statistics of a (sub-)block follow from integer
// sums over its quants:
//
//   - Q8_0: float32(q)·d, q an int8, d an fp16 (11 significant bits): at most
//     19 bits, exact.
//   - Q4_0: float32(q−8)·d, q−8 in [−8, 7]: at most 15 bits, exact.
//   - Q5_0: float32(q−16)·d, q−16 in [−16, 15]: at most 16 bits, exact.
//   - Q5_1: float32(c·d) + m, c in [0, 31]: c·d is exact (16 bits), the
//     addition when d and m are within a few binades (kernel_ggml_q51.go).
//   - Q4_K: float32(d1·q) − m1 with d1 = d·sc and m1 = dmin·m (fp16 times a
//     6-bit integer: at most 17 bits, exact) and q in [0, 15]. d1·q is
//     exact (21 bits); the subtraction is exact when d1 = u·A and m1 = u·B
//     for a power of two u and integers with |A·q − B| below 2^24 for
//     every q, since u·(A·q − B) is then a float32. That holds when d and
//     dmin are within a few binades of each other, as llama.cpp's quantizer
//     makes them; a sub-block where it does not is folded value by value
//     from the float32 values ggml computes. (When m1 is ±0 the value is
//     d1·q, and a zero value is −0 only when d is negative and m1 is +0.)
//   - Q5_K: as Q4_K with 5-bit codes q in [0, 31] (d1·q at most 22 bits):
//     the same test with 31·A, the same sums (kernel_ggml_q5k.go).
//   - Q2_K: as Q4_K with 4-bit scales and minimums, sub-blocks of 16 and
//     2-bit codes (dl·q at most 17 bits): the same test with 3·A, the same
//     sums (kernel_ggml_q2k.go).
//   - Q6_K: (d·sc)·q, sc an int8 and q in [−32, 31]: at most 23 bits, exact
//     (see intQ6_K).
//   - Q3_K: (d·(sc − 32))·q', sc a 6-bit scale and q' in [−4, 3]: at most
//     18 bits, exact; folded as Q6_K through addSuper (kernel_ggml_q3k.go).
//   - Q4_1 (Q5_1's form with 4-bit codes, kernel_ggml_q41.go), IQ4_NL and
//     IQ4_XS (a scale times a table entry, kernel_ggml_iq4.go).
//   - MXFP4: an E8M0 power of two times an entry of a table of integers
//     up to 12 (kernel_ggml_mxfp4.go); a pass holding an exponent whose
//     values may be subnormal or infinite is handed back.
//
// A block with scale s and integer quants q adds s·Σq to the sum and s²·Σq²
// to the sum of squares, both computed exactly in float64 (Q4_K: a
// super-block adds u·Σ(A·q − B) and u²·Σ(A·q − B)², the sums taken in int64
// over its exact sub-blocks, the second rounded once; Q6_K likewise over its
// sixteen sub-blocks; Q8_0, Q5_0 and Q4_0 into four float64 lanes,
// kernel_ggml_q8.go), so
// only the float64
// additions across blocks round: the sums are at least as close to exact as
// the dequantizing path's. The counts are exact: a value
// is zero where q is (Q4_K: where A·q = B), never subnormal (an fp16 scale's
// smallest step, 2^−24, is a normal float32), and never non-finite (a pass
// holding a block whose scale is NaN or infinite is handed back to the
// dequantizing path, which counts and locates the bad values). The extremes
// are the scale times the extreme quants; a block is looked at for them only
// when its scale times the extreme quants of the type could extend the pass's
// extremes (in llama.cpp's files a block's largest |q| is nearly always the
// type's largest, so few are; Q8_0's vector loop takes every block's, and
// Q6_K's AVX-512 loop every super-block's). The sign of a zero extreme is settled as the
// float kernels settle it: −0 for the minimum when a −0 occurs.
//
// The quant sums come a batch of blocks at a time from kernel_ggml_sums.go
// (AVX2 where the CPU has it, the tables below otherwise; the same words
// either way); Q8_0 is folded whole by kernel_ggml_q8.go's loop (AVX2 and
// F16C, or its Go twin; the same lanes either way). Each kernel's twin is the dequantizing path (ggml's fast
// dequantizers then the F32 kernel) and ReferenceStats: TestGGMLIntKernels
// holds them to it.

// ggmlIntKernels are the integer kernels by type.
var ggmlIntKernels = map[ggml.Type]func(src []byte) (Acc, bool){
	ggml.Q8_0: intQ8_0,
	ggml.Q4_0: intQ4_0,
	ggml.Q5_0: intQ5_0,
	ggml.Q5_1: intQ5_1,
	ggml.Q4_K: intQ4_K,
	ggml.Q5_K: intQ5_K,
	ggml.Q6_K: intQ6_K,
	// kernel_ggml_q2k.go, kernel_ggml_q3k.go, kernel_ggml_q41.go, kernel_ggml_iq4.go
	ggml.Q2_K:   intQ2_K,
	ggml.Q3_K:   intQ3_K,
	ggml.Q4_1:   intQ4_1,
	ggml.IQ4_NL: intIQ4_NL,
	ggml.IQ4_XS: intIQ4_XS,
	ggml.MXFP4:  intMXFP4, // kernel_ggml_mxfp4.go
}

// ggmlM2Cancel is the share of the sum of squares under which sumsq −
// sum·mean is not trusted for the squared deviations (at most 10 bits
// cancel): the pass then goes to the dequantizing path, which adds the
// deviations from the mean in a second pass.
const ggmlM2Cancel = 1.0 / 1024

// intFold accumulates a pass of an integer kernel.
type intFold struct {
	n, zeros         uint64
	sum, sq          float64
	lo, hi           float64 // extremes; the sign of a zero extreme is settled by negZero and posZero
	negZero, posZero uint64  // 1 when a −0 or a +0 occurs (set without branches)
}

func newIntFold() intFold { return intFold{lo: math.Inf(1), hi: math.Inf(-1)} }

// scaled folds n values s·q for a finite nonzero scale s: their integer quants
// sum to sq1, their squares to sq2, and zeros of them are 0 (zeros of the
// sign of s; whether there are any and the sign of s follow the data, so
// they are recorded without a branch).
func (f *intFold) scaled(s float64, n int, sq1, sq2 int64, zeros int) {
	f.n += uint64(n)
	f.sum += s * float64(sq1)
	f.sq += s * s * float64(sq2)
	f.zeros += uint64(zeros)
	some := uint64(-int64(zeros)) >> 63 // 1 when zeros > 0
	neg := math.Float64bits(s) >> 63
	f.negZero |= some & neg
	f.posZero |= some &^ neg
}

// extremes folds the extreme values of a block with scale s and extreme
// quants qlo, qhi.
func (f *intFold) extremes(s float64, qlo, qhi int) {
	a, b := s*float64(qlo), s*float64(qhi)
	if s < 0 {
		a, b = b, a
	}
	f.lo, f.hi = min(f.lo, a), max(f.hi, b)
}

// reaches says whether a block with scale s and quants in [qlo, qhi] could
// extend the extremes.
func (f *intFold) reaches(s float64, qlo, qhi int) bool {
	a, b := s*float64(qlo), s*float64(qhi)
	// min and max rather than a swap on the sign of s: no branch on it, and
	// the same comparisons (a NaN compares false, ±0 equal, either way)
	return min(a, b) < f.lo || max(a, b) > f.hi
}

// value folds one finite value as the float kernels see it.
func (f *intFold) value(x float32) {
	v := float64(x)
	f.n++
	f.sum += v
	f.sq += v * v
	f.lo, f.hi = min(f.lo, v), max(f.hi, v)
	if v == 0 {
		f.zeros++
		if math.Signbit(v) {
			f.negZero = 1
		} else {
			f.posZero = 1
		}
	}
}

// acc is the pass's accumulator; false when the squared deviations cannot be
// had from the sums (see ggmlM2Cancel).
func (f *intFold) acc() (Acc, bool) {
	if f.n == 0 {
		return NewAcc(), true
	}
	b := Acc{Count: f.n, Finite: f.n, Zeros: f.zeros, FirstBad: -1}
	lo, hi := f.lo, f.hi
	if lo == 0 {
		lo = 0
		if f.negZero != 0 {
			lo = math.Copysign(0, -1)
		}
	}
	if hi == 0 {
		hi = math.Copysign(0, -1)
		if f.posZero != 0 {
			hi = 0
		}
	}
	b.Min, b.Max, b.AbsMax = lo, hi, math.Max(-lo, hi)
	mean := f.sum / float64(f.n)
	m2 := f.sq - f.sum*mean
	if m2 < f.sq*ggmlM2Cancel {
		return Acc{}, false
	}
	b.Mean, b.M2, b.SumSq = mean, m2, f.sq
	return b, true
}

// f16Finite says whether an fp16 pattern is finite.
func f16Finite(h uint16) bool { return h&0x7c00 != 0x7c00 }

// q8Sums packs, for an int8 quant byte c, q+128 (bits 0–15), 1 when q is 0
// (bits 16–23) and q² (bits 32–63): added over a 32-value block the fields
// cannot carry into each other (8160, 32, 2^19 at most).
var q8Sums = func() (t [256]uint64) {
	for c := range t {
		q := int64(int8(c))
		t[c] = uint64(q+128) | uint64(b2u(q == 0))<<16 | uint64(q*q)<<32
	}
	return
}()

// q4Sums packs, for a byte of two Q4_0 quants (4-bit codes, the value is
// code−8), the sum of the codes (bits 0–15), how many are 8, the zero value
// (bits 16–31), and the sum of their squares (bits 32–63).
var q4Sums = func() (t [256]uint64) {
	for c := range t {
		lo, hi := uint64(c&15), uint64(c>>4)
		t[c] = lo + hi | (b2u(lo == 8)+b2u(hi == 8))<<16 | (lo*lo+hi*hi)<<32
	}
	return
}()

// nibbleSums packs, for a byte of two 4-bit quants lo (bits 0–3) and hi,
// lo, hi, lo² and hi² in four 16-bit fields: added over 32 bytes they stay
// below 2^13.
var nibbleSums = func() (t [256]uint64) {
	for c := range t {
		lo, hi := uint64(c&15), uint64(c>>4)
		t[c] = lo | hi<<16 | lo*lo<<32 | hi*hi<<48
	}
	return
}()

// tableSum32 adds up tab over 32 bytes, eight at a time in two chains.
func tableSum32(q *[32]byte, tab *[256]uint64) uint64 {
	return tableSum16((*[16]byte)(q[0:]), tab) + tableSum16((*[16]byte)(q[16:]), tab)
}

// tableSum16 adds up tab over 16 bytes.
func tableSum16(q *[16]byte, tab *[256]uint64) uint64 {
	w0, w1 := binary.LittleEndian.Uint64(q[0:]), binary.LittleEndian.Uint64(q[8:])
	t0 := tab[byte(w0)] + tab[byte(w0>>8)] + tab[byte(w0>>16)] + tab[byte(w0>>24)]
	t1 := tab[byte(w0>>32)] + tab[byte(w0>>40)] + tab[byte(w0>>48)] + tab[byte(w0>>56)]
	t2 := tab[byte(w1)] + tab[byte(w1>>8)] + tab[byte(w1>>16)] + tab[byte(w1>>24)]
	t3 := tab[byte(w1>>32)] + tab[byte(w1>>40)] + tab[byte(w1>>48)] + tab[byte(w1>>56)]
	return (t0 + t1) + (t2 + t3)
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// q4Range is the smallest and largest code (0–15) of a Q4_0 block: 0 and 15
// when both occur (the byte test of q5kRange over its 32 nibbles, eight to
// a uint64), else read one by one.
func q4Range(b *[18]byte) (qlo, qhi int) {
	const ones, low7, top = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	has0, has15 := uint64(top), uint64(top)
	for _, w := range [2]uint64{binary.LittleEndian.Uint64(b[2:]), binary.LittleEndian.Uint64(b[10:])} {
		for _, x := range [2]uint64{w & (15 * ones), w >> 4 & (15 * ones)} {
			has0 &= x + low7
			has15 &= (x ^ 15*ones) + low7
		}
	}
	if has0&top != top && has15&top != top {
		return 0, 15
	}
	qlo, qhi = 15, 0
	for _, c := range b[2:] {
		qlo, qhi = min(qlo, int(c&15), int(c>>4)), max(qhi, int(c&15), int(c>>4))
	}
	return qlo, qhi
}

// q5Sums packs, for a 5-bit Q5_0 code c (the value is c−16), c (bits 0–15),
// 1 when c is 16 (bits 16–31) and c² (bits 32–63): added over a 32-value
// block they stay below 2^10, 2^6 and 2^15.
var q5Sums = func() (t [32]uint64) {
	for c := range t {
		t[c] = uint64(c) | b2u(c == 16)<<16 | uint64(c*c)<<32
	}
	return
}()

// q5Code is the 5-bit code of value j (0–31) of a Q5_0 block, as
// dequantize_row_q5_0 reads it: the low (j < 16) or high nibble of qs[j&15]
// and bit j of qh.
func q5Code(b *[22]byte, j int) byte {
	qh := binary.LittleEndian.Uint32(b[2:])
	return b[6+j&15]>>(4*(j>>4))&15 | byte(qh>>j&1)<<4
}

// intQ5_0 is the integer kernel of Q5_0 (block: fp16 d, 32 bits of high
// bits, 16 bytes of 4-bit low parts; the value is (c−16)·d), folded four
// blocks at a time as Q8_0 is (kernel_ggml_q8.go).
func intQ5_0(src []byte) (Acc, bool) {
	return foldLanes(src, ggml.Q5_0)
}

// signedZeros folds a block whose scale d is ±0: every value is a zero, of
// the sign of d times that of its quant (quant(c) for Q8_0; for 4-bit quants,
// nil, q−8 over the nibbles of qs).
func (f *intFold) signedZeros(d float64, qs []byte, quant func(byte) int) {
	neg := math.Signbit(d)
	for _, c := range qs {
		qq := [2]int{int(c&15) - 8, int(c>>4) - 8}
		k := 2
		if quant != nil {
			qq[0], k = quant(c), 1
		}
		for _, q := range qq[:k] {
			// float32(q)·d: the sign is the XOR of the operands' (float32(0) is +0)
			f.value(float32(math.Copysign(0, b2f(neg != (q < 0)))))
		}
	}
}

// b2f is −1 for true, +1 for false (a sign for math.Copysign).
func b2f(negative bool) float64 {
	if negative {
		return -1
	}
	return 1
}

// pow2 is 2^e for a normal float64 power (−1022 ≤ e ≤ 1023; an fp16's
// unit is within [−24, 20]), as math.Ldexp(1, e) without its call.
func pow2(e int) float64 {
	return math.Float64frombits(uint64(e+1023) << 52)
}

// f16Parts splits a finite fp16 pattern into a signed integer mantissa
// without trailing zero bits and a power of two: the value is m·2^e.
func f16Parts(h uint16) (m int64, e int) {
	exp, frac := int(h>>10&31), int64(h&1023)
	if exp == 0 {
		m, e = frac, -24
	} else {
		m, e = frac|1024, exp-25
	}
	if m == 0 {
		return 0, 0
	}
	tz := bits.TrailingZeros64(uint64(m))
	m >>= tz
	e += tz
	if h&0x8000 != 0 {
		m = -m
	}
	return m, e
}

// q4kScaleMin is get_scale_min_k4 of ggml-quants.c: the 6-bit scale and
// minimum of sub-block j from a Q4_K/Q5_K super-block's 12 scale bytes.
func q4kScaleMin(j int, q *[12]byte) (sc, m int64) {
	if j < 4 {
		return int64(q[j] & 63), int64(q[j+4] & 63)
	}
	return int64(q[j+4]&0xF | (q[j-4]>>6)<<4), int64(q[j+4]>>4 | (q[j]>>6)<<4)
}

// intQ4_K is the integer kernel of Q4_K (super-block: fp16 d and dmin, twelve
// bytes of 6-bit scales and minimums, 128 bytes of 4-bit quants: eight
// sub-blocks of 32, the value float32(d·sc·q) − dmin·m). A super-block whose
// eight sub-blocks are all provably exact goes through q4kFast, any other
// through q4kSubs (the two give the same sums, bit for bit: the same int64
// totals, TestGGMLQ4KFast).
func intQ4_K(src []byte) (Acc, bool) {
	f := newIntFold()
	var sums [ggmlSumsBatch]uint64
	i := 0                          // the block's word in sums
	const batch = ggmlSumsBatch / 4 // super-blocks
	for off := 0; off+144 <= len(src); off, i = off+144, i+1 {
		if i == batch {
			i = 0
		}
		if i == 0 {
			ggmlSumsQ4_K(src[off:min(off+144*batch, len(src))], sums[:])
		}
		b := (*[144]byte)(src[off:])
		hd, hm := binary.LittleEndian.Uint16(b[0:]), binary.LittleEndian.Uint16(b[2:])
		if !f16Finite(hd) || !f16Finite(hm) {
			return Acc{}, false
		}
		t := (*[4]uint64)(sums[4*i:])
		if !q4kFastOn || !f.q4kFastVec(b, hd, hm, t) {
			f.q4kSubs(b, hd, hm, t)
		}
	}
	return f.acc()
}

// q4kFastOn lets tests run intQ4_K with q4kSubs alone.
var q4kFastOn = true

// q4kInv is 1/sc for a 6-bit scale sc (+Inf for 0).
var q4kInv = func() (t [64]float64) {
	for sc := range t {
		t[sc] = 1 / float64(sc)
	}
	return
}()

// q4kUnpack is get_scale_min_k4 for all eight sub-blocks at once: byte j of
// sc is sub-block j's 6-bit scale, byte j of m its minimum.
func q4kUnpack(q *[12]byte) (sc, m uint64) {
	w0 := uint64(binary.LittleEndian.Uint32(q[0:]))
	w1 := uint64(binary.LittleEndian.Uint32(q[4:]))
	w2 := uint64(binary.LittleEndian.Uint32(q[8:]))
	sc = w0&0x3f3f3f3f | (w2&0x0f0f0f0f|(w0>>6&0x03030303)<<4)<<32
	m = w1&0x3f3f3f3f | (w2>>4&0x0f0f0f0f|(w1>>6&0x03030303)<<4)<<32
	return sc, m
}

// q4kUnits writes a super-block's fp16 d and dmin in one unit 2^e: d = mdu·2^e
// and dmin = mmu·2^e exactly (mdu, mmu below 2^31 in magnitude). ok is false
// when the two exponents are more than 20 apart: the super-block is then
// folded sub-block by sub-block.
func q4kUnits(hd, hm uint16) (mdu, mmu int64, e int, ok bool) {
	md, ed := f16Parts(hd)
	mm, em := f16Parts(hm)
	if md == 0 {
		ed = em
	} else if mm == 0 {
		em = ed
	}
	e = min(ed, em)
	sa, sb := uint(ed-e), uint(em-e)
	if sa > 20 || sb > 20 {
		return 0, 0, 0, false
	}
	return md << sa, mm << sb, e, true
}

// q4kFast folds a Q4_K super-block (fp16 d and dmin hd, hm, finite; t its
// four nibbleSums words) when each of its sub-blocks passes q4kSubs'
// exactness test, and says whether it did (false: nothing folded). Over the
// unit u its sums are those of q4kSubs, factored over the scales and
// minimums as intQ6_K's are: with A = md·sc, B = mm·m (shifted to the unit)
// and a sub-block's nibble sums s1, s2, Σ(A·q − B) = md'·Σsc·s1 − 32·mm'·Σm
// and Σ(A·q − B)² = md'²·Σsc²·s2 − 2·md'·mm'·Σsc·m·s1 + 32·mm'²·Σm², the
// same integers (the totals are below 2^32 and 2^56; int64 arithmetic
// wraps, so the products may pass 2^63 on the way). A sub-block has zero
// values only where B = A·k for a quant k in [0, 15]: k is found by a
// multiplication with 1/A (1/(md') times a table of 1/sc), its rounding
// checked in integers, and only then are its quants counted. The extremes
// are looked at sub-block by sub-block only when the super-block's range
// could extend the pass's.
func (f *intFold) q4kFast(b *[144]byte, hd, hm uint16, t *[4]uint64) bool {
	mdu, mmu, e, ok := q4kUnits(hd, hm)
	if !ok {
		return false
	}
	scw, mw := q4kUnpack((*[12]byte)(b[4:16]))
	invA := 1 / float64(mdu) // ±Inf when md is 0: then every A is 0
	// The sums in two words (every term is at least 0): p1 holds Σsc·s1
	// (below 2^18) and, from bit 24, Σsc·m·s1 (below 2^24); p2 Σsc²·s2
	// (below 2^28), from bit 30 Σm (below 2^9), from bit 40 Σm² (below
	// 2^15). zs holds the zero values (bits 0–15) and how many sub-blocks
	// with B = 0 (bits 16–31) or B ≠ 0 (from bit 32) have some.
	var p1, p2, zs uint64
	// The range of the super-block's values A·q − B, in units: its ends
	// are the sub-blocks' −B and 15·A − B, so it also settles exactness.
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for j := 0; j < 8; j++ {
		sc, m := scw>>(8*j)&63, mw>>(8*j)&63
		A, B := mdu*int64(sc), mmu*int64(m)
		y := 15*A - B
		lo, hi = min(lo, -B, y), max(hi, -B, y)
		w := t[j>>1] >> (16 * uint(j&1))
		s1, s2 := w&0xffff, w>>32&0xffff
		p1 += sc * s1 * (1 + m<<24)
		p2 += sc*sc*s2 + (m|m*m<<10)<<30
		// zero values: B = A·k, k in [0, 15] (k is NaN or infinite when
		// A is 0)
		if k := float64(B) * invA * q4kInv[sc]; k > -0.5 && k < 15.5 {
			if kk := int64(k + 0.5); A*kk == B {
				if z := q4kCount((*[32]byte)(b[16+32*(j>>1):]), uint(4*(j&1)), byte(kk)); z > 0 {
					zs += uint64(z) + 1<<16<<(16*b2u(B != 0))
				}
			}
		} else if A == 0 && B == 0 {
			zs += 32 + 1<<16
		}
	}
	// exact when every |B| and |15·A − B| is below 2^24 (exactAffine)
	u, ok := f.addFactored(lo, hi, p1, p2, zs, e, hd, hm, mdu, mmu, 32)
	if !ok {
		return false
	}
	if float64(lo)*u < f.lo || float64(hi)*u > f.hi {
		f.q4kExtremes(b, mdu, mmu, scw, mw, u)
	}
	return true
}

// addFactored adds a Q4_K, Q5_K or Q2_K super-block of 256 values folded
// from its factored integer sums (q4kFast, q5kFast, q2kFast: p1, p2 and zs
// packed as q4kFast says, lo and hi its range in units of 2^e, per values
// to a sub-block) unless that range says it is not exact (ok false: nothing
// added), and returns the unit u = 2^e.
func (f *intFold) addFactored(lo, hi int64, p1, p2, zs uint64, e int, hd, hm uint16, mdu, mmu, per int64) (u float64, ok bool) {
	if lo <= -1<<24 || hi >= 1<<24 {
		return 0, false
	}
	s1sc, sx := int64(p1&(1<<24-1)), int64(p1>>24)
	s2sc, sm, sm2 := int64(p2&(1<<30-1)), int64(p2>>30&1023), int64(p2>>40)
	zeros, zb0, zb := zs&0xffff, b2u(zs>>16&0xffff != 0), b2u(zs>>32 != 0)
	u = math.Float64frombits(uint64(e+1023) << 52) // 2^e, e in [−24, 15]
	f.n += 256
	f.sum += u * float64(mdu*s1sc-per*mmu*sm)
	f.sq += u * u * float64(mdu*mdu*s2sc-2*mdu*mmu*sx+per*mmu*mmu*sm2)
	// A zero value is +0 (x − x) unless m1 is ±0: then it is d1·0 − m1,
	// −0 when d is negative and m1 (of dmin's sign) +0.
	f.zeros += zeros
	if hd&0x8000 != 0 && hm&0x8000 == 0 {
		f.negZero |= zb0
		f.posZero |= zb
	} else {
		f.posZero |= zb0 | zb
	}
	return u, true
}

// q4kCore is what q4kCoreAsm finds of a Q4_K (or Q5_K) super-block's eight
// sub-blocks (A = mdu·sc, B = mmu·m in units; s1, s2 their code sums).
type q4kCore struct {
	s      [4]uint32 // Σsc·s1, Σsc·m·s1, Σsc²·s2, Σm²
	sm     uint64    // Σm
	lo, hi float64   // the smallest and largest of every −B and qmax·A − B
	ext    uint64    // bit j: sub-block j's range reaches past the pass's extremes
}

// q4kFastVec is q4kFast with the sub-block loop in vector instructions
// (q4kCoreAsm) where they run: it folds a super-block exactly as q4kFast
// does, the same int64 sums into the same float64 additions, and hands one
// with possible zero values to q4kFast itself (TestGGMLQ4KFast holds the
// two to each other bit for bit).
func (f *intFold) q4kFastVec(b *[144]byte, hd, hm uint16, t *[4]uint64) bool {
	if !q4kCoreOK {
		return f.q4kFast(b, hd, hm, t)
	}
	mdu, mmu, e, ok := q4kUnits(hd, hm)
	if !ok {
		return false
	}
	scw, mw := q4kUnpack((*[12]byte)(b[4:16]))
	u := math.Float64frombits(uint64(e+1023) << 52) // 2^e, e in [−24, 15]
	var c q4kCore
	if q4kCoreAsm(&t[0], scw, mw, mdu, mmu, f.lo/u, f.hi/u, 15, &c) {
		return f.q4kFast(b, hd, hm, t)
	}
	if c.lo <= -1<<24 || c.hi >= 1<<24 {
		return false
	}
	s1sc, sx, s2sc, sm2, sm := int64(c.s[0]), int64(c.s[1]), int64(c.s[2]), int64(c.s[3]), int64(c.sm)
	f.n += 256
	f.sum += u * float64(mdu*s1sc-32*mmu*sm)
	f.sq += u * u * float64(mdu*mdu*s2sc-2*mdu*mmu*sx+32*mmu*mmu*sm2)
	if c.ext != 0 {
		f.q4kExtremesOf(b, mdu, mmu, scw, mw, u, c.ext)
	}
	return true
}

// q4kExtremesOf folds the extremes of the sub-blocks in mask (bit j:
// sub-block j) of a Q4_K super-block, as q4kExtremes does with those whose
// range could extend the pass's: the sub-blocks in mask are those whose
// range reaches past the pass's extremes before the super-block, a superset
// of the ones q4kExtremes reads, and a sub-block read beyond them holds no
// value past the extremes, so the result is the same.
func (f *intFold) q4kExtremesOf(b *[144]byte, mdu, mmu int64, scw, mw uint64, u float64, mask uint64) {
	xlo, xhi := int64(math.MaxInt64), int64(math.MinInt64)
	for ; mask != 0; mask &= mask - 1 {
		j := bits.TrailingZeros64(mask)
		A, B := mdu*int64(scw>>(8*j)&63), mmu*int64(mw>>(8*j)&63)
		qlo, qhi := q4kRange((*[32]byte)(b[16+32*(j>>1):]), uint(4*(j&1)))
		a, z := A*qlo-B, A*qhi-B
		if a > z {
			a, z = z, a
		}
		xlo, xhi = min(xlo, a), max(xhi, z)
	}
	f.lo, f.hi = min(f.lo, float64(xlo)*u), max(f.hi, float64(xhi)*u)
}

// q4kSubs folds a Q4_K super-block (fp16 d and dmin hd, hm, finite; t its
// four nibbleSums words) sub-block by sub-block: over its exact ones, as
// int64 sums in units, the others value by value.
func (f *intFold) q4kSubs(b *[144]byte, hd, hm uint16, t *[4]uint64) {
	// d = md·2^ed, dmin = mm·2^em; over the unit u = 2^min(ed, em) a
	// sub-block's d1 = d·sc is A = md·sc·2^sa units, m1 = dmin·m is B.
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
	// A zero value is +0 (x − x) unless m1 is ±0: then it is d1·0 − m1,
	// −0 when d is negative and m1 (of dmin's sign) +0.
	negZero := hd&0x8000 != 0 && hm&0x8000 == 0
	// The super-block's sums and extremes in units (the sums of at most
	// eight sub-blocks: below 2^32 and 2^56), and the pass's extremes
	// in units, for the test whether a sub-block can extend them.
	var sum, sq int64
	n, zeros := 0, 0
	xlo, xhi := int64(math.MaxInt64), int64(math.MinInt64)
	fl, fh := f.lo/u, f.hi/u
	scales := (*[12]byte)(b[4:16])
	for g := 0; g < 4; g++ {
		qs := (*[32]byte)(b[16+32*g:])
		w := t[g] // the field of its sub-blocks
		for half := 0; half < 2; half++ {
			sc, m := q4kScaleMin(2*g+half, scales)
			shift, nib := uint(16*half), uint(4*half) // the field of w, the nibble of a byte
			A, B := md*sc, mm*m
			if sa > 20 || sb > 20 || !exactAffine(A<<sa, B<<sb, 15) {
				// not provably exact: value by value, as ggml computes them
				f.q4kValues(ggml.F16ToF32(hd), ggml.F16ToF32(hm), sc, m, qs, nib)
				continue
			}
			A, B = A<<sa, B<<sb
			s1, s2 := int64(w>>shift&0xffff), int64(w>>(32+shift)&0xffff)
			z := 0
			switch {
			case A == 0 && B == 0:
				z = 32
			case A != 0 && (B == 0 || (A > 0) == (B > 0)) && abs64(B) <= 15*abs64(A) && B%A == 0:
				k0 := byte(B / A)
				for _, c := range qs {
					z += int(b2u(c>>nib&15 == k0))
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
			// Σ(A·q − B) and Σ(A·q − B)²: the first below 2^29, the
			// second below 2^53, the terms below 2^56.
			n += 32
			sum += A*s1 - 32*B
			sq += A*A*s2 - 2*A*B*s1 + 32*B*B
			lo, hi := -B, 15*A-B
			if A < 0 {
				lo, hi = hi, lo
			}
			if float64(lo) < fl || float64(hi) > fh {
				qlo, qhi := int64(15), int64(0)
				for _, c := range qs {
					q := int64(c >> nib & 15)
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
	}
	f.n += uint64(n)
	f.zeros += uint64(zeros)
	f.sum += u * float64(sum)
	f.sq += u * u * float64(sq)
	if xlo <= xhi {
		f.lo, f.hi = min(f.lo, float64(xlo)*u), max(f.hi, float64(xhi)*u)
	}
}

// q4kCount counts the quants equal to k (0–15) among the nibbles at nib of
// qs: eight bytes at a time, a byte's nibble XOR k plus 0x7f carries into its
// top bit unless it is zero.
func q4kCount(qs *[32]byte, nib uint, k byte) int {
	kk := uint64(k) * 0x0101010101010101
	n := 0
	for w := 0; w < 32; w += 8 {
		x := binary.LittleEndian.Uint64(qs[w:])>>nib&0x0f0f0f0f0f0f0f0f ^ kk
		n += bits.OnesCount64((x + 0x7f7f7f7f7f7f7f7f) & 0x8080808080808080)
	}
	return 32 - n
}

// q4kExtremes folds the extremes of the sub-blocks of a Q4_K super-block
// (A = mdu·sc, B = mmu·m in units u; sc and m as q4kUnpack gives them),
// reading a sub-block's quants only when its range could extend the pass's,
// as q4kSubs does.
func (f *intFold) q4kExtremes(b *[144]byte, mdu, mmu int64, scw, mw uint64, u float64) {
	xlo, xhi := int64(math.MaxInt64), int64(math.MinInt64)
	fl, fh := f.lo/u, f.hi/u
	for j := 0; j < 8; j++ {
		A, B := mdu*int64(scw>>(8*j)&63), mmu*int64(mw>>(8*j)&63)
		lo, hi := -B, 15*A-B
		if A < 0 {
			lo, hi = hi, lo
		}
		if float64(lo) >= fl && float64(hi) <= fh {
			continue
		}
		qlo, qhi := q4kRange((*[32]byte)(b[16+32*(j>>1):]), uint(4*(j&1)))
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

// q4kRange is the smallest and largest quant among the nibbles at nib of
// qs. A sub-block quantized to its own range nearly always holds a 0 and a
// 15, which q4kCount's byte test finds eight at a time; otherwise the quants
// are looked at one by one.
func q4kRange(qs *[32]byte, nib uint) (qlo, qhi int64) {
	const ones, low7, top = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	var has0, has15 uint64 // a top bit clear where a byte is 0, 15
	has0, has15 = top, top
	for w := 0; w < 32; w += 8 {
		x := binary.LittleEndian.Uint64(qs[w:]) >> nib & (15 * ones)
		has0 &= x + low7
		has15 &= (x ^ 15*ones) + low7
	}
	if has0&top != top && has15&top != top {
		return 0, 15
	}
	qlo, qhi = 15, 0
	for _, c := range qs {
		q := int64(c >> nib & 15)
		qlo, qhi = min(qlo, q), max(qhi, q)
	}
	return qlo, qhi
}

// q4kValues folds the 32 values of a Q4_K sub-block (scale sc, minimum m;
// its quants the nibbles at nib of qs) one by one, computed as ggml does.
func (f *intFold) q4kValues(d, dmin float32, sc, m int64, qs *[32]byte, nib uint) {
	d1, m1 := d*float32(sc), dmin*float32(m)
	var tab [16]float32
	for k := range tab {
		tab[k] = float32(d1*float32(k)) - m1
	}
	for _, c := range qs {
		f.value(tab[c>>nib&15])
	}
}

// exactAffine says whether A·q − B is below 2^24 in magnitude for every q
// in [0, qmax] (the extremes are at q = 0 and q = qmax), so that float32
// holds it, times a power of two, exactly.
func exactAffine(A, B, qmax int64) bool {
	const lim = 1 << 24
	return abs64(B) < lim && abs64(A*qmax-B) < lim
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// q6Sums packs, for a 6-bit Q6_K code c (the value's quant is c−32), c
// (bits 0–15), 1 when c is 32 (bits 16–31) and c² (bits 32–63): added over a
// 16-value sub-block they stay below 2^10, 2^5 and 2^16.
var q6Sums = func() (t [64]uint64) {
	for c := range t {
		t[c] = uint64(c) | b2u(c == 32)<<16 | uint64(c*c)<<32
	}
	return
}()

// q6Code is the 6-bit code of value l (0–15) of sub-block j (0–15) of a Q6_K
// super-block, as dequantize_row_q6_K reads it: sub-block j = 8h + 2k + is
// takes, at index i = 16·is + l of half h, the low (k < 2) or high nibble of
// ql[64h + 32(k&1) + i] and bit pair k of qh[32h + i].
func q6Code(b *[210]byte, j, l int) byte {
	h, k, is := j>>3, j>>1&3, j&1
	i := 16*is + l
	lo := b[64*h+32*(k&1)+i] >> (4 * (k >> 1)) & 15
	hi := b[128+32*h+i] >> (2 * k) & 3
	return lo | hi<<4
}

// intQ6_K is the integer kernel of Q6_K (super-block: 128 bytes of low
// nibbles, 64 of high bit pairs, sixteen int8 scales, fp16 d; sixteen
// sub-blocks of 16 values (d·sc)·q with q = code − 32 in [−32, 31]).
//
// Exact: d = md·2^e with |md| < 2^11; d·sc is md·sc·2^e, below 2^18 units,
// and (d·sc)·q is md·sc·q·2^e, |md·sc·q| < 2^11·2^7·2^5 = 2^23 units:
// neither product rounds in float32 (nor underflows: a nonzero value is at
// least 2^−24), whatever the order of the two multiplications. A zero value
// has the sign of d XOR that of sc XOR that of q (float32(0) is +0). Over the
// unit 2^e a sub-block adds A·Σq and A²·Σq² (A = md·sc) to the super-block's
// int64 sums (below 2^31 and 2^54). A super-block with d = ±0, and a
// sub-block with sc = 0, is folded value by value (its zeros' signs follow
// the quants'); a non-finite d hands the pass back.
func intQ6_K(src []byte) (Acc, bool) {
	f := newIntFold()
	var sums [ggmlSumsBatch]uint64
	const batch = ggmlSumsBatch / 16 // super-blocks
	var supers [batch]q6kSuper
	var ext [batch][2]int32 // where ggmlExtremesQ6_KAsmOK
	i := 0                  // the block's index in supers (its first word in sums, over 16)
	for off := 0; off+210 <= len(src); off, i = off+210, i+1 {
		if i == batch {
			i = 0
		}
		if i == 0 {
			part := src[off:min(off+210*batch, len(src))]
			ggmlSumsQ6_K(part, sums[:])
			ggmlSupersQ6_K(part, sums[:], supers[:])
			if ggmlExtremesQ6_KAsmOK {
				ggmlExtremesQ6_K(part, ext[:])
			}
		}
		b := (*[210]byte)(src[off:])
		hd := binary.LittleEndian.Uint16(b[208:])
		if !f16Finite(hd) {
			return Acc{}, false
		}
		md, e := f16Parts(hd)
		if md == 0 {
			f.q6kValues(b, hd, 0, 16)
			continue
		}
		u := pow2(e)
		words := (*[16]uint64)(sums[16*i:])
		sc := (*[16]byte)(b[192:208])
		if hasZeroByte(binary.LittleEndian.Uint64(sc[0:])) || hasZeroByte(binary.LittleEndian.Uint64(sc[8:])) {
			// some sc = 0: those sub-blocks value by value, the others as below
			for j := range words {
				if sc[j] == 0 {
					f.q6kValues(b, hd, j, j+1)
				} else {
					f.q6kSub(md, u, int64(int8(sc[j])), words[j], b, j)
				}
			}
			continue
		}
		// Over the unit u a sub-block adds md·sc·Σq and (md·sc)²·Σq², and
		// Σq = c1 − 16·32, Σq² = c2 − 64·c1 + 16·32² from its code sums c1,
		// c2: the super-block adds md·Σsc·Σq and md²·Σsc²·Σq² (q6kSuper's s1
		// and s2, at most 2^20 and 2^32; the products below 2^31 and 2^54).
		// A zero value (q = 0) is −0 when d and sc differ in sign.
		r := &supers[i]
		f.addSuper(md, u, r)
		if ggmlExtremesQ6_KAsmOK {
			// its extremes, md times the least and greatest sc·q (no sc is 0
			// here): the same as the sub-blocks' below, min and max being
			// exact
			lo, hi := md*int64(ext[i][0]), md*int64(ext[i][1])
			if md < 0 {
				lo, hi = hi, lo
			}
			f.lo, f.hi = min(f.lo, float64(lo)*u), max(f.hi, float64(hi)*u)
			continue
		}
		// The super-block's values lie within ±32·|md|·max|sc| units: look
		// at its sub-blocks' extremes only when that could extend the pass's.
		if bound := 32 * abs64(md) * int64(r.amax); float64(-bound)*u < f.lo || float64(bound)*u > f.hi {
			for j := range words {
				f.q6kExtremes(md, u, int64(int8(sc[j])), b, j)
			}
		}
	}
	return f.acc()
}

// addSuper adds the 256 values of a super-block whose values are, in units
// u, md·sc·q (the scale d = md·u nonzero, no sc zero) from its sums over the
// scales r (q6kSuper: intQ6_K's, and intQ3_K's with sc − 32 for sc and
// q in [−4, 3]). A zero value (q = 0) is −0 when d and sc differ in sign.
func (f *intFold) addSuper(md int64, u float64, r *q6kSuper) {
	dneg := uint64(md) >> 63
	f.n += 256
	f.zeros += r.zeros
	f.sum += u * float64(md*r.s1)
	f.sq += u * u * float64(md*md*r.s2)
	f.negZero |= dneg&r.zpos | (1-dneg)&r.zneg
	f.posZero |= dneg&r.zneg | (1-dneg)&r.zpos
}

// q6kSub folds sub-block j of a Q6_K super-block whose scale sc is not zero
// (d = md·u, t its q6Sums word), as intQ6_K's loop does, and its extremes.
func (f *intFold) q6kSub(md int64, u float64, sc int64, t uint64, b *[210]byte, j int) {
	A := md * sc
	c1, c2 := int64(t&0xffff), int64(t>>32)
	f.n += 16
	f.sum += u * float64(A*(c1-16*32))
	f.sq += u * u * float64(A*A*(c2-64*c1+16*32*32))
	if z := t >> 16 & 0xffff; z > 0 {
		f.zeros += z
		if (md < 0) != (sc < 0) {
			f.negZero = 1
		} else {
			f.posZero = 1
		}
	}
	f.q6kExtremes(md, u, sc, b, j)
}

// q6kExtremes folds the extremes of sub-block j of a Q6_K super-block (d =
// md·u, scale sc), reading its codes only when its range, ±32·|md·sc| units,
// could extend the pass's.
func (f *intFold) q6kExtremes(md int64, u float64, sc int64, b *[210]byte, j int) {
	bound := float64(32*abs64(md*sc)) * u
	if sc == 0 || (-bound >= f.lo && bound <= f.hi) {
		return
	}
	clo, chi := q6kCodeRange(b, j)
	A := md * sc
	lo, hi := A*(int64(clo)-32), A*(int64(chi)-32)
	if lo > hi {
		lo, hi = hi, lo
	}
	f.lo, f.hi = min(f.lo, float64(lo)*u), max(f.hi, float64(hi)*u)
}

// q6kCodeRange is the least and the greatest code of sub-block j of a Q6_K
// super-block, eight codes to a uint64 (six bits to a byte, so that the
// bytes compare without borrows): the two words' bytes paired, then halved
// three times, the greatest kept as 63 minus it beside the least.
// q6kCodeRangeGo is its plain twin (TestQ6KCodeRange).
func q6kCodeRange(b *[210]byte, j int) (clo, chi byte) {
	h, k, is := j>>3, j>>1&3, j&1
	ql := b[64*h+32*(k&1)+16*is:]
	qh := b[128+32*h+16*is:]
	nib, pair := uint(4*(k>>1)), uint(2*k)
	const lo4, bits45 = 0x0f0f0f0f0f0f0f0f, 0x3030303030303030
	code := func(o int) uint64 {
		return binary.LittleEndian.Uint64(ql[o:])>>nib&lo4 | binary.LittleEndian.Uint64(qh[o:])>>pair<<4&bits45
	}
	x, y := code(0), code(8)
	m := bytesGE(x, y)
	lo, hi := y&m|x&^m, x&m|y&^m
	hi ^= 0x3f3f3f3f3f3f3f3f // 63 − each
	lo, hi = bytesMin(lo, lo>>32), bytesMin(hi, hi>>32)
	w := lo&0xffffffff | hi<<32
	w = bytesMin(w, w>>16)
	w = bytesMin(w, w>>8)
	return byte(w), 63 - byte(w>>32)
}

// bytesGE is 0xff in each byte where that of a is at least that of b (bytes
// below 128), 0 elsewhere.
func bytesGE(a, b uint64) uint64 {
	return ((a | 0x8080808080808080) - b) >> 7 & 0x0101010101010101 * 0xff
}

// bytesMin is the least of each pair of bytes of a and b (bytes below 128).
func bytesMin(a, b uint64) uint64 {
	m := bytesGE(a, b)
	return b&m | a&^m
}

// q6kCodeRangeGo is the plain twin of q6kCodeRange: the codes as q6Code
// reads them, one by one.
func q6kCodeRangeGo(b *[210]byte, j int) (clo, chi byte) {
	clo, chi = 63, 0
	for l := 0; l < 16; l++ {
		c := q6Code(b, j, l)
		clo, chi = min(clo, c), max(chi, c)
	}
	return clo, chi
}

// hasZeroByte says whether a byte of x is zero.
func hasZeroByte(x uint64) bool {
	return (x-0x0101010101010101)&^x&0x8080808080808080 != 0
}

// q6kValues folds the values of sub-blocks j0 to j1−1 of a Q6_K super-block
// (scale d, the fp16 pattern hd) one by one, computed as ggml does.
func (f *intFold) q6kValues(b *[210]byte, hd uint16, j0, j1 int) {
	d := ggml.F16ToF32(hd)
	for j := j0; j < j1; j++ {
		d1 := d * float32(int8(b[192+j]))
		for l := 0; l < 16; l++ {
			f.value(d1 * float32(int(q6Code(b, j, l))-32))
		}
	}
}
