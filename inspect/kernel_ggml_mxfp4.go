package inspect

import (
	"encoding/binary"
)

// The integer kernel of MXFP4 (block: an E8M0 exponent e, 16 bytes of 4-bit
// indices; value j is float32(k[low nibble of qs[j]])·d, value j+16 that of
// the high nibble, k ggml's kvalues_mxfp4 = {0, 1, 2, 3, 4, 6, 8, 12, 0, −1,
// −2, −3, −4, −6, −8, −12}, twice the E2M1 values, and d =
// ggml_e8m0_to_fp32_half(e)):
//
//   - For 2 ≤ e ≤ 254, d = 2^(e−128) exactly (ggml writes the float32's
//     exponent field e − 1), a positive normal power of two; for e = 0 and
//     1 it is the subnormal 2^−128 or 2^−127; 255 is 2^127, not NaN.
//   - With 2 ≤ e ≤ 252 every value k·d is exact (|k| ≤ 12 has at most 2
//     significant bits), finite (at most 12·2^124 < 2^128) and, unless k
//     is 0, normal (at least 2^−126): so no value is subnormal or infinite.
//     A value is zero only where k is (the indices 0 and 8), and the zero
//     is float32(0)·d with d > 0: +0, never −0.
//   - A pass holding a block with e < 2 (nonzero values subnormal) or e >
//     252 (12·2^125 and 8·2^125 overflow to ±Inf at e = 253) is handed
//     back to the dequantizing path, which counts the subnormals and the
//     infinities and locates the first.
//
// So a block adds d·Σk and d²·Σk² (|Σk| ≤ 384 and Σk² ≤ 4608 times a
// power of two within float64's normal range, exact; blocks whose exponents
// lie near each other add them in int64 first, mxfp4Window) and its zero
// count. The index sums come from mxfp4Sums, sixteen bytes (one block)
// to a word. k is not monotone in the index, so a block's extremes are d
// times the entries of its least and greatest rank (mxfp4Range), read only
// when d·[−12, 12] could extend the pass's.

// mxfp4Table is ggml's kvalues_mxfp4.
var mxfp4Table = [16]int64{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}

// mxfp4ByRank is mxfp4Table in ascending order without its second zero:
// the entry of rank r (mxfp4Range's ranks).
var mxfp4ByRank = [15]int64{-12, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8, 12}

// mxfp4Sums packs, for a byte of two 4-bit indices lo and hi, k[lo] + k[hi]
// + 32 (bits 0–15), how many of the two are zero, k = 0 (bits 16–31), and
// k[lo]² + k[hi]² (bits 32–63): added over sixteen bytes the fields stay
// below 2^10, 2^6 and 2^13.
var mxfp4Sums = func() (t [256]uint64) {
	for c := range t {
		lo, hi := mxfp4Table[c&15], mxfp4Table[c>>4]
		t[c] = uint64(lo+hi+32) | (b2u(lo == 0)+b2u(hi == 0))<<16 | uint64(lo*lo+hi*hi)<<32
	}
	return
}()

// mxfp4Split is Σk, the count of k = 0 and Σk² from the mxfp4Sums word of
// sixteen bytes.
func mxfp4Split(w uint64) (s1, zeros, s2 int64) {
	return int64(w&0xffff) - 16*32, int64(w >> 16 & 0xffff), int64(w >> 32)
}

// mxfp4Range is the least and greatest entry k among the 32 indices of qs.
// Each nibble n becomes its rank in ascending k (n + 7 for n < 8, 15 − n
// for n ≥ 8: the indices 0 and 8, both k = 0, share rank 7), eight bytes
// to a uint64 without a branch, and the ranks' least and greatest are taken
// as nibbleRange16 takes the nibbles' (nibbleWordsRange).
func mxfp4Range(qs *[16]byte) (kmin, kmax int64) {
	const l4, l3, ones = 0x0f0f0f0f0f0f0f0f, 0x0707070707070707, 0x0101010101010101
	rank := func(x uint64) uint64 {
		m := x >> 3 & ones * 0xff // 0xff in the bytes whose nibble is 8 or more
		return x ^ m&l4 + l3&^m
	}
	w0, w1 := binary.LittleEndian.Uint64(qs[0:]), binary.LittleEndian.Uint64(qs[8:])
	lo, hi := nibbleWordsRange(rank(w0&l4), rank(w0>>4&l4), rank(w1&l4), rank(w1>>4&l4))
	return mxfp4ByRank[lo], mxfp4ByRank[hi]
}

// mxfp4Exact says whether every value of a block with exponent e is exact,
// finite and not subnormal (2 ≤ e ≤ 252).
func mxfp4Exact(e byte) bool { return e-2 <= 250 }

// mxfp4Window and mxfp4Run: a run of at most mxfp4Run blocks adds the sums
// of its blocks whose exponent e lies in [e0, e0 + mxfp4Window) (e0 ten
// below the run's first exponent) in int64 over the unit 2^(e0−128): a
// block adds Σk·2^(e−e0) and Σk²·2^(2(e−e0)), below 2^9·2^19 and
// 2^13·2^38, so the run's totals stay below 2^36 and 2^59, added to the
// float64 sums once per run. Weight-like passes hold exponents within a
// few of each other; a block outside the window adds d·Σk and d²·Σk² in
// float64 itself.
const (
	mxfp4Window = 20
	mxfp4Run    = 256
)

// intMXFP4 is the integer kernel of MXFP4.
func intMXFP4(src []byte) (Acc, bool) {
	f := newIntFold()
	var zeros int64
	n := len(src) / 17
	for r := 0; r < n; r += mxfp4Run {
		var a1, a2 int64 // the run's sums in the window, over the unit 2^(e0−128)
		e0 := max(2, int(src[17*r])-10)
		for off := 17 * r; off < 17*min(r+mxfp4Run, n); off += 17 {
			b := (*[17]byte)(src[off:])
			if !mxfp4Exact(b[0]) {
				return Acc{}, false
			}
			e := int(b[0])
			qs := (*[16]byte)(b[1:])
			d := pow2(e - 128)
			s1, z, s2 := mxfp4Split(tableSum16(qs, &mxfp4Sums))
			zeros += z
			if sh := uint(e - e0); sh < mxfp4Window {
				a1 += s1 << sh
				a2 += s2 << (2 * sh)
			} else {
				f.sum += d * float64(s1)
				f.sq += d * d * float64(s2)
			}
			if f.reaches(d, -12, 12) {
				lo, hi := mxfp4Range(qs)
				f.extremes(d, int(lo), int(hi))
			}
		}
		u := pow2(e0 - 128)
		f.sum += u * float64(a1)
		f.sq += u * u * float64(a2)
	}
	f.n, f.zeros = uint64(32*n), uint64(zeros)
	f.posZero = b2u(zeros > 0) // d > 0: every zero is +0
	return f.acc()
}
