package inspect

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// The integer kernel of Q2_K (super-block: sixteen scale bytes, 64 bytes of
// 2-bit codes, fp16 d and dmin: sixteen sub-blocks of 16 values
// float32(dl·q) − ml, dl = d·(sc&15) and ml = dmin·(sc>>4) for the scale
// byte sc of the sub-block, q in [0, 3]; dequantize_row_q2_K). It is Q4_K's
// form with 4-bit scales and minimums, sub-blocks of 16 and the largest code
// 3: dl and ml are an fp16 times a 4-bit integer (at most 11 + 4 = 15
// bits, exact), dl·q at most 17 bits (exact), and the subtraction is exact
// when, over the unit u of d and dmin (d = md·2^ed, dmin = mm·2^em, u =
// 2^min(ed, em)), every A·q − B (A = md·(sc&15)·2^(ed−e), B =
// mm·(sc>>4)·2^(em−e)) is below 2^24 in magnitude for q in [0, 3]
// (exactAffine with 3): u·(A·q − B) is then a float32, and the
// subtraction, correctly rounded, gives it. |A·q| < 2^16.5·2^(ed−e) and
// |B| < 2^15·2^(em−e), so that holds whenever d's unit is at most 6 binades
// above dmin's and dmin's at most 8 above d's (llama.cpp's quantizer makes
// them within a binade or two); a sub-block where it does not is folded
// value by value from the float32 values ggml computes. No value is
// subnormal (a nonzero one is at least 2^−24) or non-finite (a non-finite d
// or dmin hands the pass back). A zero value is +0 (x − x) unless ml is ±0:
// then it is dl·q − ml with dl·q of d's sign and ml of dmin's, −0 when d is
// negative and dmin not (as for Q4_K; with dl = d·0, a zero of d's sign,
// too).
//
// A super-block whose sixteen sub-blocks are all exact is folded whole from
// five integer sums over its scales and minimums (Q4_K's, with 16 values to
// a sub-block: addFactored): by q2kFastVec, which takes its two halves of
// eight sub-blocks through q4kCoreAsm where that runs, else by q2kFast in
// Go; any other by q2kSubs (the same int64 sums over its exact sub-blocks,
// the others value by value). TestGGMLQ2KFast and FuzzGGMLQ2K hold the
// three to each other bit for bit. The code sums (Σq, Σq² of each
// sub-block) come from an AVX2 loop (kernel_ggml_q2k_amd64.s) or its twin
// ggmlSumsQ2_KGo, the same words.

// intQ2_K is the integer kernel of Q2_K.
func intQ2_K(src []byte) (Acc, bool) {
	f := newIntFold()
	var sums [ggmlSumsBatch]uint64
	i := 0                          // the super-block's first word in sums, over 8
	const batch = ggmlSumsBatch / 8 // super-blocks
	for off := 0; off+84 <= len(src); off, i = off+84, i+1 {
		if i == batch {
			i = 0
		}
		if i == 0 {
			ggmlSumsQ2_K(src[off:min(off+84*batch, len(src))], sums[:])
		}
		b := (*[84]byte)(src[off:])
		hd, hm := binary.LittleEndian.Uint16(b[80:]), binary.LittleEndian.Uint16(b[82:])
		if !f16Finite(hd) || !f16Finite(hm) {
			return Acc{}, false
		}
		t := (*[8]uint64)(sums[8*i:])
		if !q2kFastOn || !f.q2kFastVec(b, hd, hm, t) {
			f.q2kSubs(b, hd, hm, t)
		}
	}
	return f.acc()
}

// q2kFastOn lets tests run intQ2_K with q2kSubs alone.
var q2kFastOn = true

// q2kSums packs, for a byte c of four 2-bit codes (bits 2k and 2k+1: code
// k), code k in byte k and its square in byte 4+k: added over the 16 bytes
// of a group (q2kGroup) the fields stay below 49 and 145.
var q2kSums = func() (t [256]uint64) {
	for c := range t {
		for k := 0; k < 4; k++ {
			q := uint64(c >> (2 * k) & 3)
			t[c] += q<<(8*k) | q*q<<(32+8*k)
		}
	}
	return
}()

// q2kGroup is the 16-byte group of codes of sub-block j (its bytes at 16 +
// 16·g) and the shift of its codes in those bytes: dequantize_row_q2_K takes
// half h = j>>3, code pair k = (j>>1)&3 of byte 16·(j&1) + l of the half's
// 32.
func q2kGroup(j int) (g int, shift uint) {
	return j>>3<<1 | j&1, uint(2 * (j >> 1 & 3))
}

// q2kCode is code l of sub-block j of a Q2_K super-block, as
// dequantize_row_q2_K reads it.
func q2kCode(b *[84]byte, j, l int) int64 {
	g, shift := q2kGroup(j)
	return int64(b[16+16*g+l] >> shift & 3)
}

// ggmlSumsQ2_K writes the eight code-sum words of each whole Q2_K
// super-block of src to out (words 8i to 8i+7 of super-block i, as
// ggmlSumsQ2_KGo says): by an AVX2 loop where the CPU has it
// (kernel_ggml_q2k_amd64.s), else by its twin ggmlSumsQ2_KGo; the same
// words.
func ggmlSumsQ2_K(src []byte, out []uint64) {
	if ggmlSumsAsmOK {
		ggmlSumsQ2_KVec(src, out)
		return
	}
	ggmlSumsQ2_KGo(src, out)
}

// ggmlSumsQ2_KGo is the Go twin of ggmlSumsQ2_K's vector loop: the table
// q2kSums added up over each group's 16 bytes, and the groups' words of
// each half rearranged by q2kPairs (word 8i+w holds Σq of sub-blocks 2w
// and 2w+1 of super-block i in bits 0 and 16, their Σq² in bits 32 and 48,
// as nibbleSums holds a Q4_K pair's).
func ggmlSumsQ2_KGo(src []byte, out []uint64) {
	for i := 0; 84*i+84 <= len(src); i++ {
		var g [4]uint64
		for k := range g {
			g[k] = tableSum16((*[16]byte)(src[84*i+16+16*k:]), &q2kSums)
		}
		w0, w1 := q2kPairs(g[0], g[1]), q2kPairs(g[2], g[3])
		copy(out[8*i:], w0[:])
		copy(out[8*i+4:], w1[:])
	}
}

// q2kSubSums is Σq and Σq² of sub-block j from its super-block's eight
// code-sum words t.
func q2kSubSums(t *[8]uint64, j int) (s1, s2 uint64) {
	w := t[j>>1] >> (16 * uint(j&1))
	return w & 0xffff, w >> 32 & 0xffff
}

// q2kCount counts the codes of sub-block j equal to k (0–3), eight at a
// time as q4kCount does.
func q2kCount(b *[84]byte, j int, k byte) int {
	g, shift := q2kGroup(j)
	kk := uint64(k) * 0x0101010101010101
	n := 0
	for w := 0; w < 16; w += 8 {
		x := binary.LittleEndian.Uint64(b[16+16*g+w:])>>shift&0x0303030303030303 ^ kk
		n += bits.OnesCount64((x + 0x7f7f7f7f7f7f7f7f) & 0x8080808080808080)
	}
	return 16 - n
}

// q2kRange is the smallest and largest code of sub-block j: 0 and 3 when
// both occur (the byte test of q4kRange), else looked at one by one.
func q2kRange(b *[84]byte, j int) (qlo, qhi int64) {
	const ones, low7, top = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	g, shift := q2kGroup(j)
	has0, has3 := uint64(top), uint64(top)
	for w := 0; w < 16; w += 8 {
		x := binary.LittleEndian.Uint64(b[16+16*g+w:]) >> shift & (3 * ones)
		has0 &= x + low7
		has3 &= (x ^ 3*ones) + low7
	}
	if has0&top != top && has3&top != top {
		return 0, 3
	}
	qlo, qhi = 3, 0
	for _, c := range b[16+16*g : 32+16*g] {
		q := int64(c >> shift & 3)
		qlo, qhi = min(qlo, q), max(qhi, q)
	}
	return qlo, qhi
}

// q2kFast folds a Q2_K super-block (fp16 d and dmin hd, hm, finite; t its
// eight code-sum words) when each of its sub-blocks passes q2kSubs' exactness
// test, and says whether it did (false: nothing folded). It is q4kFast with
// sixteen sub-blocks of 16, 4-bit scales and minimums (the low and high
// nibbles of a scale byte, eight to a word) and 3 for 15: the same factored
// sums (Σsc·s1 below 2^14, Σsc·m·s1 below 2^18, Σsc²·s2 below 2^20, Σm below
// 2^8, Σm² below 2^12: q4kFast's packing holds them), the super-block's
// sums below 2^32 and 2^56.
func (f *intFold) q2kFast(b *[84]byte, hd, hm uint16, t *[8]uint64) bool {
	mdu, mmu, e, ok := q4kUnits(hd, hm)
	if !ok {
		return false
	}
	var p1, p2, zs uint64 // as q4kFast's
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for j := 0; j < 16; j++ {
		sc, m := uint64(b[j]&15), uint64(b[j]>>4)
		A, B := mdu*int64(sc), mmu*int64(m)
		y := 3*A - B
		lo, hi = min(lo, -B, y), max(hi, -B, y)
		s1, s2 := q2kSubSums(t, j)
		p1 += sc * s1 * (1 + m<<24)
		p2 += sc*sc*s2 + (m|m*m<<10)<<30
		// zero values: B = A·k, k in [0, 3] (every value when A and B
		// are 0)
		if B == 0 || B == A || B == 2*A || B == 3*A {
			if A == 0 {
				zs += 16 + 1<<16
			} else if z := q2kCount(b, j, byte(B/A)); z > 0 {
				zs += uint64(z) + 1<<16<<(16*b2u(B != 0))
			}
		}
	}
	// exact when every |B| and |3·A − B| is below 2^24 (exactAffine)
	u, ok := f.addFactored(lo, hi, p1, p2, zs, e, hd, hm, mdu, mmu, 16)
	if !ok {
		return false
	}
	if float64(lo)*u < f.lo || float64(hi)*u > f.hi {
		f.q2kExtremes(b, mdu, mmu, u)
	}
	return true
}

// q2kFastVec is q2kFast with the sub-block loop in vector instructions
// where they run: q4kCoreAsm, with the largest code 3, on sub-blocks 0–7 and
// then 8–15 (each half's four code-sum words, laid out as a Q4_K
// super-block's nibbleSums words, and its 4-bit scales and minimums eight
// to a word, one per byte), the halves' results added: the same int64 sums
// into the same float64 additions as q2kFast's. A super-block with possible zero
// values goes to q2kFast itself (TestGGMLQ2KFast holds the two to each
// other bit for bit).
func (f *intFold) q2kFastVec(b *[84]byte, hd, hm uint16, t *[8]uint64) bool {
	if !q2kCoreOn || !q4kCoreOK {
		return f.q2kFast(b, hd, hm, t)
	}
	mdu, mmu, e, ok := q4kUnits(hd, hm)
	if !ok {
		return false
	}
	u := math.Float64frombits(uint64(e+1023) << 52) // 2^e, e in [−24, 15]
	fl, fh := f.lo/u, f.hi/u
	var c [2]q4kCore
	for h := 0; h < 2; h++ {
		sw := binary.LittleEndian.Uint64(b[8*h:])
		if q4kCoreAsm(&t[4*h], sw&0x0f0f0f0f0f0f0f0f, sw>>4&0x0f0f0f0f0f0f0f0f, mdu, mmu, fl, fh, 3, &c[h]) {
			return f.q2kFast(b, hd, hm, t)
		}
	}
	if min(c[0].lo, c[1].lo) <= -1<<24 || max(c[0].hi, c[1].hi) >= 1<<24 {
		return false
	}
	s1sc, sx := int64(c[0].s[0])+int64(c[1].s[0]), int64(c[0].s[1])+int64(c[1].s[1])
	s2sc, sm2 := int64(c[0].s[2])+int64(c[1].s[2]), int64(c[0].s[3])+int64(c[1].s[3])
	sm := int64(c[0].sm + c[1].sm)
	f.n += 256
	f.sum += u * float64(mdu*s1sc-16*mmu*sm)
	f.sq += u * u * float64(mdu*mdu*s2sc-2*mdu*mmu*sx+16*mmu*mmu*sm2)
	if ext := c[0].ext | c[1].ext<<8; ext != 0 {
		f.q2kExtremesOf(b, mdu, mmu, u, ext)
	}
	return true
}

// q2kCoreOn lets tests run q2kFastVec as q2kFast in Go.
var q2kCoreOn = true

// q2kPairs is, from the q2kSums words of groups 2h and 2h+1 of a Q2_K
// super-block (e, o), the four code-sum words of its sub-blocks 8h to 8h+7
// (laid out as nibbleSums words, which q4kCoreAsm reads): word k holds Σq of sub-blocks 8h+2k
// (byte k of e) and 8h+2k+1 (byte k of o) in bits 0 and 16, their Σq² (bytes
// 4+k) in bits 32 and 48.
func q2kPairs(e, o uint64) (w [4]uint64) {
	const mask = 0x000000ff000000ff
	for k := range w {
		w[k] = e>>(8*k)&mask | (o>>(8*k)&mask)<<16
	}
	return w
}

// q2kExtremesOf folds the extremes of the sub-blocks in mask (bit j:
// sub-block j) of a Q2_K super-block, as q2kExtremes does with those whose
// range could extend the pass's (see q4kExtremesOf: the same result).
func (f *intFold) q2kExtremesOf(b *[84]byte, mdu, mmu int64, u float64, mask uint64) {
	xlo, xhi := int64(math.MaxInt64), int64(math.MinInt64)
	for ; mask != 0; mask &= mask - 1 {
		j := bits.TrailingZeros64(mask)
		A, B := mdu*int64(b[j]&15), mmu*int64(b[j]>>4)
		qlo, qhi := q2kRange(b, j)
		a, z := A*qlo-B, A*qhi-B
		if a > z {
			a, z = z, a
		}
		xlo, xhi = min(xlo, a), max(xhi, z)
	}
	f.lo, f.hi = min(f.lo, float64(xlo)*u), max(f.hi, float64(xhi)*u)
}

// q2kExtremes folds the extremes of the sub-blocks of a Q2_K super-block
// (A = mdu·(sc&15), B = mmu·(sc>>4) in units u), reading a sub-block's codes
// only when its range could extend the pass's, as q2kSubs does.
func (f *intFold) q2kExtremes(b *[84]byte, mdu, mmu int64, u float64) {
	xlo, xhi := int64(math.MaxInt64), int64(math.MinInt64)
	fl, fh := f.lo/u, f.hi/u
	for j := 0; j < 16; j++ {
		A, B := mdu*int64(b[j]&15), mmu*int64(b[j]>>4)
		lo, hi := -B, 3*A-B
		if A < 0 {
			lo, hi = hi, lo
		}
		if float64(lo) >= fl && float64(hi) <= fh {
			continue
		}
		qlo, qhi := q2kRange(b, j)
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

// q2kSubs folds a Q2_K super-block (fp16 d and dmin hd, hm, finite; t its
// eight code-sum words) sub-block by sub-block as q4kSubs folds a Q4_K one:
// over its exact sub-blocks as int64 sums in units, the others value by
// value.
func (f *intFold) q2kSubs(b *[84]byte, hd, hm uint16, t *[8]uint64) {
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
	// The super-block's sums in units: of at most sixteen sub-blocks of 16
	// values below 2^24, below 2^32 and 2^56.
	var sum, sq int64
	n, zeros := 0, 0
	xlo, xhi := int64(math.MaxInt64), int64(math.MinInt64)
	fl, fh := f.lo/u, f.hi/u
	for j := 0; j < 16; j++ {
		sc, m := int64(b[j]&15), int64(b[j]>>4)
		A, B := md*sc, mm*m
		if sa > 20 || sb > 20 || !exactAffine(A<<sa, B<<sb, 3) {
			f.q2kValues(b, ggml.F16ToF32(hd), ggml.F16ToF32(hm), sc, m, j)
			continue
		}
		A, B = A<<sa, B<<sb
		s1u, s2u := q2kSubSums(t, j)
		s1, s2 := int64(s1u), int64(s2u)
		z := 0
		switch {
		case A == 0 && B == 0:
			z = 16
		case A != 0 && (B == 0 || (A > 0) == (B > 0)) && abs64(B) <= 3*abs64(A) && B%A == 0:
			k0 := B / A
			for l := 0; l < 16; l++ {
				z += int(b2u(q2kCode(b, j, l) == k0))
			}
		} // A == 0, B ≠ 0: every value is −ml, not zero
		if z > 0 {
			zeros += z
			if B == 0 && negZero {
				f.negZero = 1
			} else {
				f.posZero = 1
			}
		}
		n += 16
		sum += A*s1 - 16*B
		sq += A*A*s2 - 2*A*B*s1 + 16*B*B
		lo, hi := -B, 3*A-B
		if A < 0 {
			lo, hi = hi, lo
		}
		if float64(lo) < fl || float64(hi) > fh {
			qlo, qhi := int64(3), int64(0)
			for l := 0; l < 16; l++ {
				q := q2kCode(b, j, l)
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

// q2kValues folds the 16 values of sub-block j of a Q2_K super-block (scale
// sc, minimum m) one by one, computed as ggml does.
func (f *intFold) q2kValues(b *[84]byte, d, dmin float32, sc, m int64, j int) {
	dl, ml := d*float32(sc), dmin*float32(m)
	var tab [4]float32
	for k := range tab {
		tab[k] = float32(dl*float32(k)) - ml
	}
	for l := 0; l < 16; l++ {
		f.value(tab[q2kCode(b, j, l)])
	}
}
