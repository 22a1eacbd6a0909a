package inspect

import (
	"encoding/binary"

	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// The integer kernels of IQ4_NL and IQ4_XS, whose values are a scale times
// an entry of ggml's non-linear table kvalues_iq4nl (sixteen int8 values,
// −127 to 113, ascending with the 4-bit index, none zero):
//
//   - IQ4_NL (block: fp16 d, 16 bytes of 4-bit indices; value j is
//     d·k[low nibble of qs[j]], value j+16 d·k[high nibble]): with
//     d = md·2^e (|md| < 2^11), d·k is md·k·2^e, |md·k| < 2^18 units:
//     exact, and never subnormal (a nonzero value is at least 2^−24).
//     A value is zero only when d is ±0, of the sign of d XOR that of k.
//   - IQ4_XS (super-block: fp16 d, 16 bits of scales' high bit pairs, 4
//     bytes of their low nibbles, 128 bytes of indices: eight sub-blocks of
//     32, each with a 6-bit ls, dl = d·float32(ls − 32), value dl·k): dl is
//     md·(ls − 32)·2^e, |md·(ls − 32)| ≤ 2^11·32 = 2^16 units, and dl·k is
//     below 2^16·127 < 2^23 units: neither product rounds in float32 (nor
//     underflows, nor overflows: at most 65504·32·127 ≈ 2^28). A sub-block
//     with ls = 32 has dl = d·(+0), a zero of the sign of d, and its every
//     value dl·k is a zero of the sign of d XOR that of k (k < 0 for the
//     indices 0–7); otherwise no value is zero unless d is ±0.
//
// So a block adds d·Σk and d²·Σk² to the sums (IQ4_NL, intFold.scaled: md·Σk
// below 2^23, md²·Σk² below 2^41, exact in float64), and an IQ4_XS
// super-block, over the unit 2^e, md·Σ(ls − 32)·Σk and md²·Σ(ls − 32)²·Σk²
// over its sub-blocks (int64, below 2^31 and 2^54; the second rounded once
// into float64). The index sums come from iq4Sums, sixteen bytes (one
// block, one sub-block) to a word, a batch of blocks at a time
// (ggmlSumsIQ4_NL, ggmlSumsIQ4_XS: AVX2 where the CPU has it,
// kernel_ggml_iq4_amd64.s, the table otherwise; the same words either
// way). Because the table ascends, a (sub-)block's extremes are the scale
// times the entries of its least and greatest index (nibbleRange16), read
// only when its range could extend the pass's. A block or super-block
// whose d is ±0 is folded value by value as ggml computes the values (every
// one a zero, of the signs above); a pass holding a non-finite d is handed
// back.

// iq4Table is ggml's kvalues_iq4nl.
var iq4Table = [16]int64{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// iq4Sums packs, for a byte of two 4-bit indices lo and hi, k[lo] + k[hi]
// + 256 (bits 0–15), how many of the two are below 8, k < 0 (bits 16–31),
// and k[lo]² + k[hi]² (bits 32–63): added over sixteen bytes the fields stay
// below 2^13, 2^6 and 2^19.
var iq4Sums = func() (t [256]uint64) {
	for c := range t {
		lo, hi := iq4Table[c&15], iq4Table[c>>4]
		t[c] = uint64(lo+hi+256) | (b2u(c&15 < 8)+b2u(c>>4 < 8))<<16 | uint64(lo*lo+hi*hi)<<32
	}
	return
}()

// iq4Split is Σk, the count of negative k and Σk² from the iq4Sums word of
// sixteen bytes.
func iq4Split(w uint64) (s1, neg, s2 int64) {
	return int64(w&0xffff) - 16*256, int64(w >> 16 & 0xffff), int64(w >> 32)
}

// nibbleRange16 is the least and greatest of the 32 nibbles of qs, eight
// bytes to a uint64 without a branch (a sub-block quantized to the table
// nearly always holds index 0, the entry −127, but seldom 15): the four
// words of nibbles paired by bytesMin, the greatest kept as 15 minus it
// beside the least, then halved as q6kCodeRange halves its codes.
func nibbleRange16(qs *[16]byte) (lo, hi int) {
	const l4 = 0x0f0f0f0f0f0f0f0f
	w0, w1 := binary.LittleEndian.Uint64(qs[0:]), binary.LittleEndian.Uint64(qs[8:])
	return nibbleWordsRange(w0&l4, w0>>4&l4, w1&l4, w1>>4&l4)
}

// nibbleWordsRange is the least and greatest of the 32 bytes (each 0–15) of
// the words a, b, c, d: nibbleRange16's reduction.
func nibbleWordsRange(a, b, c, d uint64) (lo, hi int) {
	const l4 = 0x0f0f0f0f0f0f0f0f
	mn := bytesMin(bytesMin(a, b), bytesMin(c, d))
	mx := bytesMin(bytesMin(a^l4, b^l4), bytesMin(c^l4, d^l4)) // 15 − each
	mn, mx = bytesMin(mn, mn>>32), bytesMin(mx, mx>>32)
	w := mn&0xffffffff | mx<<32
	w = bytesMin(w, w>>16)
	w = bytesMin(w, w>>8)
	return int(byte(w)), 15 - int(byte(w>>32))
}

// ggmlSumsIQ4_NL writes the iq4Sums word of each whole IQ4_NL block of src
// to out (AVX2 where ggmlSumsAsmOK, else the table).
func ggmlSumsIQ4_NL(src []byte, out []uint64) {
	if ggmlSumsAsmOK {
		ggmlSumsIQ4_NLVec(src, out)
		return
	}
	ggmlSumsIQ4_NLGo(src, out)
}

// ggmlSumsIQ4_NLGo is the Go twin of ggmlSumsIQ4_NL's vector loop.
func ggmlSumsIQ4_NLGo(src []byte, out []uint64) {
	for i := 0; 18*i+18 <= len(src); i++ {
		out[i] = tableSum16((*[16]byte)(src[18*i+2:]), &iq4Sums)
	}
}

// ggmlSumsIQ4_XS writes the iq4Sums words of the eight sub-blocks of each
// whole IQ4_XS super-block of src to out (word 8i+ib: sub-block ib of
// super-block i).
func ggmlSumsIQ4_XS(src []byte, out []uint64) {
	if ggmlSumsAsmOK {
		ggmlSumsIQ4_XSVec(src, out)
		return
	}
	ggmlSumsIQ4_XSGo(src, out)
}

// ggmlSumsIQ4_XSGo is the Go twin of ggmlSumsIQ4_XS's vector loop.
func ggmlSumsIQ4_XSGo(src []byte, out []uint64) {
	for i := 0; 136*i+136 <= len(src); i++ {
		for ib := 0; ib < 8; ib++ {
			out[8*i+ib] = tableSum16((*[16]byte)(src[136*i+8+16*ib:]), &iq4Sums)
		}
	}
}

// intIQ4_NL is the integer kernel of IQ4_NL.
func intIQ4_NL(src []byte) (Acc, bool) {
	f := newIntFold()
	var sums [ggmlSumsBatch]uint64
	i := 0 // the block's word in sums
	for off := 0; off+18 <= len(src); off, i = off+18, i+1 {
		if i == ggmlSumsBatch {
			i = 0
		}
		if i == 0 {
			ggmlSumsIQ4_NL(src[off:min(off+18*ggmlSumsBatch, len(src))], sums[:])
		}
		b := (*[18]byte)(src[off:])
		h := binary.LittleEndian.Uint16(b[0:])
		if !f16Finite(h) {
			return Acc{}, false
		}
		qs := (*[16]byte)(b[2:])
		d := float64(ggml.F16ToF32(h))
		if d == 0 {
			f.iq4Fold(ggml.F16ToF32(h), qs)
			continue
		}
		s1, _, s2 := iq4Split(sums[i])
		f.scaled(d, 32, s1, s2, 0)
		if f.reaches(d, -127, 113) {
			lo, hi := nibbleRange16(qs)
			f.extremes(d, int(iq4Table[lo]), int(iq4Table[hi]))
		}
	}
	return f.acc()
}

// iq4Fold folds the 32 values dl·k of an IQ4_NL block or IQ4_XS sub-block
// (indices qs) one by one, computed as ggml does.
func (f *intFold) iq4Fold(dl float32, qs *[16]byte) {
	for j := 0; j < 16; j++ {
		f.value(dl * float32(iq4Table[qs[j]&15]))
	}
	for j := 0; j < 16; j++ {
		f.value(dl * float32(iq4Table[qs[j]>>4]))
	}
}

// iq4xsScale is ls − 32 for sub-block ib of an IQ4_XS super-block, as
// dequantize_row_iq4_xs reads it: the nibble ib&1 of scales_l[ib/2] and bit
// pair ib of scales_h.
func iq4xsScale(b *[136]byte, ib int) int64 {
	h := binary.LittleEndian.Uint16(b[2:])
	return int64(b[4+ib/2]>>(4*(ib&1))&15|byte(h>>(2*ib)&3)<<4) - 32
}

// intIQ4_XS is the integer kernel of IQ4_XS.
func intIQ4_XS(src []byte) (Acc, bool) {
	f := newIntFold()
	var sums [ggmlSumsBatch]uint64
	const batch = ggmlSumsBatch / 8 // super-blocks
	i := 0                          // the super-block's index in the batch
	for off := 0; off+136 <= len(src); off, i = off+136, i+1 {
		if i == batch {
			i = 0
		}
		if i == 0 {
			ggmlSumsIQ4_XS(src[off:min(off+136*batch, len(src))], sums[:])
		}
		b := (*[136]byte)(src[off:])
		h := binary.LittleEndian.Uint16(b[0:])
		if !f16Finite(h) {
			return Acc{}, false
		}
		md, e := f16Parts(h)
		if md == 0 {
			f.iq4xsValues(b)
			continue
		}
		f.iq4xsSuper(b, md, pow2(e), (*[8]uint64)(sums[8*i:]))
	}
	return f.acc()
}

// iq4xsSuper folds an IQ4_XS super-block whose d = md·u is not zero (t its
// sub-blocks' iq4Sums words): its sub-blocks' sums in units, those with
// ls = 32 as zeros.
func (f *intFold) iq4xsSuper(b *[136]byte, md int64, u float64, t *[8]uint64) {
	var s1, s2, zeros, neg int64 // Σ(ls − 32)·Σk, Σ(ls − 32)²·Σk²; the zero values, those with k < 0
	var l [8]int64               // ls − 32
	amax := int64(0)             // the largest |ls − 32|
	hs := uint64(binary.LittleEndian.Uint16(b[2:]))
	ls := uint64(binary.LittleEndian.Uint32(b[4:]))
	for ib := 0; ib < 8; ib++ {
		sc := int64(ls>>(4*ib)&15|hs>>(2*ib)&3<<4) - 32
		l[ib] = sc
		w1, wn, w2 := iq4Split(t[ib])
		s1 += sc * w1
		s2 += sc * sc * w2
		if sc == 0 {
			zeros += 32
			neg += wn
		}
		amax = max(amax, abs64(sc))
	}
	f.n += 256
	f.sum += u * float64(md*s1)
	f.sq += u * u * float64(md*md*s2)
	if zeros > 0 {
		// dl = d·(+0) has the sign of d; dl·k flips it where k < 0
		f.zeros += uint64(zeros)
		nd := md < 0
		if neg > 0 {
			f.negZero |= b2u(!nd)
			f.posZero |= b2u(nd)
		}
		if neg < zeros {
			f.negZero |= b2u(nd)
			f.posZero |= b2u(!nd)
		}
		f.lo, f.hi = min(f.lo, 0), max(f.hi, 0)
	}
	// The super-block's values lie within ±127·|md|·amax units: look at
	// its sub-blocks' extremes only when that could extend the pass's.
	bound := float64(127*abs64(md)*amax) * u
	if -bound >= f.lo && bound <= f.hi {
		return
	}
	for ib, sc := range l {
		A := md * sc
		// the sub-block's values lie between A·(−127) and A·113 units
		if sc == 0 || !f.reaches(float64(A)*u, -127, 113) {
			continue
		}
		lo, hi := nibbleRange16((*[16]byte)(b[8+16*ib:]))
		a, z := A*iq4Table[lo], A*iq4Table[hi]
		if a > z {
			a, z = z, a
		}
		f.lo, f.hi = min(f.lo, float64(a)*u), max(f.hi, float64(z)*u)
	}
}

// iq4xsValues folds an IQ4_XS super-block value by value, computed as ggml
// does: dl = d·float32(ls − 32), then dl·k.
func (f *intFold) iq4xsValues(b *[136]byte) {
	d := ggml.F16ToF32(binary.LittleEndian.Uint16(b[0:]))
	for ib := 0; ib < 8; ib++ {
		f.iq4Fold(d*float32(iq4xsScale(b, ib)), (*[16]byte)(b[8+16*ib:]))
	}
}
