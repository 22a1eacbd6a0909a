package inspect

import (
	"encoding/binary"

	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// The integer kernel of Q5_1 (block: fp16 d and m, 32 bits of fifth bits,
// 16 bytes of 4-bit low parts; the value float32(c·d) + m for a 5-bit code c
// in [0, 31], as dequantize_row_q5_1 computes it). llama.cpp writes it where
// a Q5_K_M file's rows are not a multiple of 256 wide.
//
// Exact: with d = md·2^ed and m = mm·2^em (fp16: |md|, |mm| < 2^11), over the
// unit u = 2^min(ed, em) a value is A·c + M for the integers A = md·2^(ed−e)
// and M = mm·2^(em−e). c·d is md·c·2^ed, at most 16 bits: exact; the addition
// is exact when |A·c + M| is below 2^24 for every c in [0, 31] (exactAffine
// with B = −M), which holds when d and m are within a few binades of each
// other, as llama.cpp's quantizer makes them (m the block's minimum, d its
// range over 31). A block where it does not, or whose units are more than
// 20 binades apart, is folded value by value as ggml computes the values. An
// exact block adds u·(A·Σc + 32·M) and u²·(A²·Σc² + 2·A·M·Σc + 32·M²) (int64,
// below 2^29 and 2^53: exact in float64), its code sums Σc and Σc² taken a
// batch of blocks at a time from ggmlSumsQ5_1 (AVX2, or q51Sums). A value is zero where A·c = −M: +0
// (x + (−x)), or −0 when m is −0 and c·d is −0 (d of negative sign). The
// extremes are M and 31·A + M unless the block's codes, read only when that
// range could extend the pass's, say otherwise (q51Range). The kernel,
// intAffine, serves Q4_1 too (the same form with 4-bit codes,
// kernel_ggml_q41.go): the block size, the largest code and the reading of
// the codes follow the type.

// q51Code is code j (0–31) of a Q5_1 block, as dequantize_row_q5_1 reads it:
// the low (j < 16) or high nibble of qs[j&15] and bit j of qh.
func q51Code(b *[24]byte, j int) int64 {
	qh := binary.LittleEndian.Uint32(b[4:])
	return int64(b[8+j&15]>>(4*(j>>4))&15 | byte(qh>>j&1)<<4)
}

// q51Sums is Σc and Σc² over the codes of a Q5_1 block: per byte of low
// parts j, its two codes' q5kSums word (the fifth bits j and j+16 of qh).
func q51Sums(b *[24]byte) (s1, s2 int64) {
	qh := binary.LittleEndian.Uint32(b[4:])
	var w0, w1 uint64
	for j := 0; j < 16; j += 2 {
		h0 := qh>>j&1 | qh>>(j+15)&2
		h1 := qh>>(j+1)&1 | qh>>(j+16)&2
		w0 += q5kSums[uint(h0)<<8|uint(b[8+j])]
		w1 += q5kSums[uint(h1)<<8|uint(b[9+j])]
	}
	w := w0 + w1
	return int64(w&0xffff + w>>16&0xffff), int64(w>>32&0xffff + w>>48)
}

// q51Range is the smallest and largest code of a Q5_1 block: 0 and 31 when
// both occur (found eight codes to a uint64, as q5kRange finds them), else
// read one by one.
func q51Range(b *[24]byte) (clo, chi int64) {
	const ones, low7, top = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	qh := binary.LittleEndian.Uint32(b[4:])
	has0, has31 := uint64(top), uint64(top)
	for l := 0; l < 32; l += 8 {
		ql := binary.LittleEndian.Uint64(b[8+l&15:]) >> (4 * uint(l>>4)) & (15 * ones)
		// bit i of the byte qh>>l to bit 0 of byte i
		h := (uint64(byte(qh>>l))*ones&0x8040201008040201 + low7) & top >> 7
		x := ql | h<<4
		has0 &= x + low7
		has31 &= (x ^ 31*ones) + low7
	}
	if has0&top != top && has31&top != top {
		return 0, 31
	}
	clo, chi = 31, 0
	for j := 0; j < 32; j++ {
		c := q51Code(b, j)
		clo, chi = min(clo, c), max(chi, c)
	}
	return clo, chi
}

// intQ5_1 is the integer kernel of Q5_1.
func intQ5_1(src []byte) (Acc, bool) {
	return intAffine(src, ggml.Q5_1)
}

// intQ4_1 is the integer kernel of Q4_1 (block: fp16 d and m, 16 bytes of
// 4-bit codes; the value float32(c·d) + m, c in [0, 15], as
// dequantize_row_q4_1 computes it): Q5_1's form with 4-bit codes, c·d at
// most 15 bits, the same test and sums (kernel_ggml_q41.go).
func intQ4_1(src []byte) (Acc, bool) {
	return intAffine(src, ggml.Q4_1)
}

// affineSums writes, for each whole block of src of ty (Q5_1 or Q4_1),
// Σc | Σc²<<32 over its codes to out. (Direct calls on the type rather
// than function values: out stays on the caller's stack.)
func affineSums(ty ggml.Type, src []byte, out []uint64) {
	if ty == ggml.Q5_1 {
		ggmlSumsQ5_1(src, out)
		return
	}
	ggmlSumsQ4_1(src, out)
}

// affineCodes writes the 32 codes of a block b of ty (Q5_1 or Q4_1) to c.
func affineCodes(ty ggml.Type, b []byte, c *[32]byte) {
	if ty == ggml.Q5_1 {
		for j := range c {
			c[j] = byte(q51Code((*[24]byte)(b), j))
		}
		return
	}
	q41Codes((*[20]byte)(b), c)
}

// affineRange is the least and greatest code of a block b of ty (Q5_1 or
// Q4_1).
func affineRange(ty ggml.Type, b []byte) (clo, chi int64) {
	if ty == ggml.Q5_1 {
		return q51Range((*[24]byte)(b))
	}
	lo, hi := nibbleRange16((*[16]byte)(b[4:20]))
	return int64(lo), int64(hi)
}

// intAffine is the integer kernel of Q5_1 (see above) and of Q4_1, the same
// form with 4-bit codes.
func intAffine(src []byte, ty ggml.Type) (Acc, bool) {
	f := newIntFold()
	var sums [ggmlSumsBatch]uint64
	var codes [32]byte
	size, qmax := 24, int64(31)
	if ty == ggml.Q4_1 {
		size, qmax = 20, 15
	}
	i := 0 // the block's word in sums
	for off := 0; off+size <= len(src); off, i = off+size, i+1 {
		if i == ggmlSumsBatch {
			i = 0
		}
		if i == 0 {
			affineSums(ty, src[off:min(off+size*ggmlSumsBatch, len(src))], sums[:])
		}
		b := src[off : off+size]
		hd, hm := binary.LittleEndian.Uint16(b[0:]), binary.LittleEndian.Uint16(b[2:])
		if !f16Finite(hd) || !f16Finite(hm) {
			return Acc{}, false
		}
		md, ed := f16Parts(hd)
		mm, em := f16Parts(hm)
		if md == 0 {
			ed = em
		} else if mm == 0 {
			em = ed
		}
		e := min(ed, em)
		sa, sb := uint(ed-e), uint(em-e)
		if sa > 20 || sb > 20 || !exactAffine(md<<sa, -(mm<<sb), qmax) {
			affineCodes(ty, b, &codes)
			f.affineValues(&codes, ggml.F16ToF32(hd), ggml.F16ToF32(hm))
			continue
		}
		A, M := md<<sa, mm<<sb
		u := pow2(e)
		s1, s2 := int64(sums[i]&0xffff), int64(sums[i]>>32)
		f.n += 32
		f.sum += u * float64(A*s1+32*M)
		f.sq += u * u * float64(A*A*s2+2*A*M*s1+32*M*M)
		// zero values: A·c = −M
		z := 0
		switch {
		case A == 0 && M == 0:
			z = 32
		case A != 0 && (M == 0 || (A > 0) != (M > 0)) && abs64(M) <= qmax*abs64(A) && M%A == 0:
			k := byte(-M / A)
			affineCodes(ty, b, &codes)
			for _, c := range codes {
				z += int(b2u(c == k))
			}
		}
		if z > 0 {
			f.zeros += uint64(z)
			if M == 0 && hm&0x8000 != 0 && hd&0x8000 != 0 {
				f.negZero = 1
			} else {
				f.posZero = 1
			}
		}
		lo, hi := M, qmax*A+M
		if A < 0 {
			lo, hi = hi, lo
		}
		if float64(lo)*u < f.lo || float64(hi)*u > f.hi {
			clo, chi := affineRange(ty, b)
			lo, hi = A*clo+M, A*chi+M
			if lo > hi {
				lo, hi = hi, lo
			}
			f.lo, f.hi = min(f.lo, float64(lo)*u), max(f.hi, float64(hi)*u)
		}
	}
	return f.acc()
}

// affineValues folds the 32 values of a block of codes c one by one,
// computed as ggml does.
func (f *intFold) affineValues(c *[32]byte, d, m float32) {
	for _, q := range c {
		f.value(float32(float32(q)*d) + m)
	}
}
