package inspect

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/x448/float16"
)

// f16Bits rounds x to the nearest fp16 pattern.
func f16Bits(x float64) uint16 { return float16.Fromfloat32(float32(x)).Bits() }

// quantizeLike writes n blocks of ty quantized from normal weights (std σ,
// mean mu) roughly as llama.cpp's quantizers do: Q8_0 and Q4_0 from the
// block's largest magnitude, Q4_K from each sub-block's range with the
// super-block's d and dmin fitted to the largest scale and minimum (Q5_K
// likewise with 5-bit codes). The
// relation of the scales' exponents, which decides the integer kernels' fast
// cases, is the one real files have.
func quantizeLike(rng *rand.Rand, ty ggml.Type, n int, mu, sigma float64) []byte {
	tr, _ := ty.Traits()
	out := make([]byte, n*tr.BlockBytes)
	x := make([]float64, tr.BlockElems)
	round := func(v float64) int { return int(math.Round(v)) }
	for i := 0; i < n; i++ {
		for j := range x {
			x[j] = mu + sigma*rng.NormFloat64()
		}
		b := out[i*tr.BlockBytes : (i+1)*tr.BlockBytes]
		switch ty {
		case ggml.Q8_0:
			amax := 0.0
			for _, v := range x {
				amax = math.Max(amax, math.Abs(v))
			}
			h := f16Bits(amax / 127)
			binary.LittleEndian.PutUint16(b, h)
			d := float64(ggml.F16ToF32(h))
			for j, v := range x {
				q := 0
				if d != 0 {
					q = max(-128, min(127, round(v/d)))
				}
				b[2+j] = byte(int8(q))
			}
		case ggml.Q4_0:
			mx := 0.0
			for _, v := range x {
				if math.Abs(v) > math.Abs(mx) {
					mx = v
				}
			}
			h := f16Bits(mx / -8)
			binary.LittleEndian.PutUint16(b, h)
			d := float64(ggml.F16ToF32(h))
			for j := 0; j < 16; j++ {
				q := func(v float64) byte {
					if d == 0 {
						return 8
					}
					return byte(max(0, min(15, round(v/d)+8)))
				}
				b[2+j] = q(x[j]) | q(x[j+16])<<4
			}
		case ggml.Q4_K, ggml.Q5_K:
			qmax := 15 // the largest code
			if ty == ggml.Q5_K {
				qmax = 31
			}
			var scale, mins [8]float64
			for s := 0; s < 8; s++ {
				lo, hi := 0.0, math.Inf(-1)
				for _, v := range x[32*s : 32*s+32] {
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
				scale[s], mins[s] = (hi-lo)/float64(qmax), -lo
			}
			maxSc, maxMin := 0.0, 0.0
			for s := range scale {
				maxSc, maxMin = math.Max(maxSc, scale[s]), math.Max(maxMin, mins[s])
			}
			hd, hm := f16Bits(maxSc/63), f16Bits(maxMin/63)
			binary.LittleEndian.PutUint16(b[0:], hd)
			binary.LittleEndian.PutUint16(b[2:], hm)
			d, dmin := float64(ggml.F16ToF32(hd)), float64(ggml.F16ToF32(hm))
			var sc, m [8]int
			for s := range sc {
				if d > 0 {
					sc[s] = max(0, min(63, round(scale[s]/d)))
				}
				if dmin > 0 {
					m[s] = max(0, min(63, round(mins[s]/dmin)))
				}
			}
			// the 6-bit packing get_scale_min_k4 reads
			sb := b[4:16]
			for j := 0; j < 8; j++ {
				if j < 4 {
					sb[j], sb[j+4] = byte(sc[j]), byte(m[j])
				} else {
					sb[j+4] = byte(sc[j]&15 | (m[j]&15)<<4)
					sb[j-4] |= byte(sc[j]>>4) << 6
					sb[j] |= byte(m[j]>>4) << 6
				}
			}
			for s := 0; s < 8; s++ {
				d1, m1 := d*float64(sc[s]), dmin*float64(m[s])
				for l := 0; l < 32; l++ {
					q := 0
					if d1 != 0 {
						q = max(0, min(qmax, round((x[32*s+l]+m1)/d1)))
					}
					if ty == ggml.Q5_K { // low parts from byte 48, fifth bits from 16
						b[48+32*(s/2)+l] |= byte(q&15) << (4 * (s % 2))
						b[16+l] |= byte(q>>4) << s
						continue
					}
					byteAt := 16 + 32*(s/2) + l
					b[byteAt] |= byte(q) << (4 * (s % 2))
				}
			}
		case ggml.Q2_K:
			quantizeQ2K(b, x)
		case ggml.Q5_0:
			// as quantize_row_q5_0: the largest magnitude maps to −16
			mx := 0.0
			for _, v := range x {
				if math.Abs(v) > math.Abs(mx) {
					mx = v
				}
			}
			h := f16Bits(mx / -16)
			binary.LittleEndian.PutUint16(b, h)
			d := float64(ggml.F16ToF32(h))
			var qh uint32
			for j, v := range x {
				c := 16
				if d != 0 {
					c = max(0, min(31, round(v/d)+16))
				}
				b[6+j&15] |= byte(c&15) << (4 * (j >> 4))
				qh |= uint32(c>>4) << j
			}
			binary.LittleEndian.PutUint32(b[2:], qh)
		case ggml.Q5_1:
			// as quantize_row_q5_1: m the block's minimum, d its range over 31
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, v := range x {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
			hd, hm := f16Bits((hi-lo)/31), f16Bits(lo)
			binary.LittleEndian.PutUint16(b[0:], hd)
			binary.LittleEndian.PutUint16(b[2:], hm)
			d := float64(ggml.F16ToF32(hd))
			var qh uint32
			for j, v := range x {
				c := 0
				if d != 0 {
					c = max(0, min(31, round((v-lo)/d)))
				}
				b[8+j&15] |= byte(c&15) << (4 * (j >> 4))
				qh |= uint32(c>>4) << j
			}
			binary.LittleEndian.PutUint32(b[4:], qh)
		case ggml.Q6_K:
			// as quantize_row_q6_K: each 16-value sub-block's scale maps its
			// largest magnitude to −32; d maps the largest scale to −128
			var scale [16]float64
			maxScale := 0.0
			for j := range scale {
				mx := 0.0
				for _, v := range x[16*j : 16*j+16] {
					if math.Abs(v) > math.Abs(mx) {
						mx = v
					}
				}
				scale[j] = mx / -32
				if math.Abs(scale[j]) > math.Abs(maxScale) {
					maxScale = scale[j]
				}
			}
			hd := f16Bits(maxScale / -128)
			binary.LittleEndian.PutUint16(b[208:], hd)
			d := float64(ggml.F16ToF32(hd))
			for j := range scale {
				sc := 0
				if d != 0 {
					sc = max(-128, min(127, round(scale[j]/d)))
				}
				b[192+j] = byte(int8(sc))
				for l := 0; l < 16; l++ {
					q := 0
					if d1 := d * float64(sc); d1 != 0 {
						q = max(-32, min(31, round(x[16*j+l]/d1)))
					}
					putQ6Code(b, j, l, byte(q+32))
				}
			}
		case ggml.IQ4_NL, ggml.IQ4_XS:
			quantizeIQ4Block(ty, b, x)
		case ggml.Q4_1:
			quantizeQ41Block(b, x)
		case ggml.Q3_K:
			quantizeQ3K(b, x)
		case ggml.MXFP4:
			quantizeMXFP4Block(b, x)
		default:
			panic("quantizeLike: " + ty.String())
		}
	}
	return out
}

// putQ6Code stores code c as value l of sub-block j of a Q6_K super-block
// (the inverse of q6Code; the bits it takes must be clear).
func putQ6Code(b []byte, j, l int, c byte) {
	h, k, is := j>>3, j>>1&3, j&1
	i := 16*is + l
	b[64*h+32*(k&1)+i] |= (c & 15) << (4 * (k >> 1))
	b[128+32*h+i] |= (c >> 4) << (2 * k)
}

// finiteF16 are finite fp16 scale patterns a block may hold: zeros of both
// signs, subnormals, the extremes, negative scales, ordinary ones.
var finiteF16 = []uint16{0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0x3c00, 0xbc00, 0x2400, 0x1c00, 0x5a00, 0x3555}

// adversarialPass is a pass of random blocks of ty with finite scales drawn
// from finiteF16 or at random, quants at random or all at one extreme.
func adversarialPass(rng *rand.Rand, ty ggml.Type, blocks int) []byte {
	tr, _ := ty.Traits()
	b := randomBits(rng, blocks*tr.BlockBytes)
	for i := 0; i < blocks; i++ {
		blk := b[i*tr.BlockBytes : (i+1)*tr.BlockBytes]
		for _, o := range tr.Scales {
			h := uint16(rng.Uint32()) &^ 0x4000 // finite: the exponent is not all ones
			if rng.IntN(2) == 0 {
				h = finiteF16[rng.IntN(len(finiteF16))]
			}
			binary.LittleEndian.PutUint16(blk[o:], h)
		}
		c := rng.IntN(5)
		adversarialIQ4(rng, ty, blk, c) // IQ4_XS, Q4_1
		switch c {
		case 0: // every quant byte the same: 0x00, 0xff, 0x80, 0x88, 0x7f
			c := []byte{0x00, 0xff, 0x80, 0x88, 0x7f}[rng.IntN(5)]
			for j := range blk {
				if !isScaleByte(tr, j) {
					blk[j] = c
				}
			}
		case 1: // Q4_K and Q5_K: the minimums far above the scales (value by value);
			// Q6_K: some sub-block scales 0 (value by value: zeros of the
			// quants' signs)
			if ty == ggml.Q6_K {
				for k := rng.IntN(4); k < 16; k += 1 + rng.IntN(4) {
					blk[192+k] = 0
				}
			}
			q2kAdversarial(rng, ty, blk, 1)
			if ty == ggml.Q3_K { // Q3_K: some scales 32 (every value ±0)
				for k := rng.IntN(4); k < 16; k += 1 + rng.IntN(4) {
					putQ3KScale(blk, k, 32)
				}
			}
			if ty == ggml.Q4_K || ty == ggml.Q5_K {
				binary.LittleEndian.PutUint16(blk[0:], 0x0400|uint16(rng.IntN(1024)))
				binary.LittleEndian.PutUint16(blk[2:], 0x5800|uint16(rng.IntN(1024)))
			}
		case 2: // Q3_K: every scale 0 or 63 (sc − 32 at −32 or 31), the largest d
			if ty == ggml.Q3_K {
				copy(blk[96:108], bytes.Repeat([]byte{[]byte{0x00, 0xff}[rng.IntN(2)]}, 12))
				binary.LittleEndian.PutUint16(blk[108:], []uint16{0x7bff, 0xfbff}[rng.IntN(2)])
			}
			// Q4_K, Q5_K: d1·q − m1 just past 2^24 units (odd mantissas, dmin
			// negative, 2^7 above d, every sc and m 63): the subtraction rounds
			q2kAdversarial(rng, ty, blk, 2)
			if ty == ggml.Q4_K || ty == ggml.Q5_K {
				binary.LittleEndian.PutUint16(blk[0:], 0x3801|uint16(rng.IntN(512))<<1)
				binary.LittleEndian.PutUint16(blk[2:], 0xd401|uint16(rng.IntN(512))<<1)
				for j := 4; j < 16; j++ {
					blk[j] = 0xff
				}
			}
		case 3: // Q4_K, Q5_K: m1 just past 2^24 units (dmin 2^8 above d, both
			// positive), d1·15 − m1 below: the middle quants round
			q2kAdversarial(rng, ty, blk, 3)
			if ty == ggml.Q4_K || ty == ggml.Q5_K {
				binary.LittleEndian.PutUint16(blk[0:], 0x3801|uint16(rng.IntN(512))<<1)
				binary.LittleEndian.PutUint16(blk[2:], 0x5800|uint16(17+2*rng.IntN(60)))
				for j := 4; j < 16; j++ {
					blk[j] = 0xff
				}
			}
		}
	}
	adversarialMXFP4(rng, ty, b) // MXFP4's exponents: mostly in the kernel's range
	return b
}

// intKernelTypes lists the types with an integer kernel, in id order.
func intKernelTypes() []ggml.Type {
	var out []ggml.Type
	for _, ty := range ggml.Types() {
		if ggmlIntKernels[ty] != nil {
			out = append(out, ty)
		}
	}
	return out
}

// negZeroBlock is one block of ty whose every value is zero: −0 when neg
// (a scale of −1 times zero quants), else +0.
func negZeroBlock(ty ggml.Type, neg bool) []byte {
	tr, _ := ty.Traits()
	b := make([]byte, tr.BlockBytes)
	d := uint16(0x3c00) // 1
	if neg {
		d = 0xbc00 // −1
	}
	switch ty {
	case ggml.Q8_0: // quants 0
	case ggml.Q4_0:
		for j := 2; j < 18; j++ {
			b[j] = 0x88 // q−8 = 0
		}
	case ggml.Q4_K, ggml.Q5_K: // every sc 1, every m 0, quants 0: d·0 − dmin·0
		binary.LittleEndian.PutUint16(b[2:], 0x3c00)
		copy(b[4:16], []byte{1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1})
	case ggml.Q5_0: // every code 16: low nibbles 0, every high bit set
		binary.LittleEndian.PutUint32(b[2:], 0xffffffff)
	case ggml.IQ4_NL: // d = ±0 (no entry of the table is zero)
		return iq4nlZeroBlock(neg)
	case ggml.IQ4_XS: // every ls 32 (dl = d·(+0)), every k 1
		binary.LittleEndian.PutUint16(b[2:], 0xaaaa)
		copy(b[8:], bytes.Repeat([]byte{0x88}, 128))
	case ggml.Q5_1, ggml.Q4_1: // codes 0, m −0 (then (−1·0) + (−0) is −0) or +0
		if neg {
			binary.LittleEndian.PutUint16(b[2:], 0x8000)
		}
	case ggml.Q2_K: // every sc 1, every m 0, codes 0: d·0 − dmin·0
		binary.LittleEndian.PutUint16(b[82:], 0x3c00)
		copy(b, bytes.Repeat([]byte{1}, 16))
	case ggml.Q3_K: // every sc 33 (sc − 32 = 1), every q' 0 (q 0, the high bit set)
		for j := 0; j < 16; j++ {
			putQ3KScale(b, j, 33)
			for l := 0; l < 16; l++ {
				putQ3KCode(b, j, l, 0)
			}
		}
	case ggml.MXFP4: // +0 only: MXFP4 has no −0 (no caller asks for one)
		return mxfp4ZeroBlock()
	case ggml.Q6_K: // every sc 1, every code 32 (q = 0)
		for j := 0; j < 16; j++ {
			b[192+j] = 1
			for l := 0; l < 16; l++ {
				putQ6Code(b, j, l, 32)
			}
		}
	default:
		panic("negZeroBlock: " + ty.String())
	}
	binary.LittleEndian.PutUint16(b[tr.Scales[0]:], d)
	return b
}

// isScaleByte says whether byte j of a block belongs to an fp16 scale.
func isScaleByte(tr ggml.Traits, j int) bool {
	for _, o := range tr.Scales {
		if j == o || j == o+1 {
			return true
		}
	}
	return false
}

// checkIntAcc holds an integer kernel's accumulator to the reference's:
// counts and extremes exactly, the signs of zero extremes included, the sums
// to rel.
func checkIntAcc(t *testing.T, what string, got, want Acc, rel float64) {
	t.Helper()
	checkAcc(t, what, got, want, rel)
	if math.Float64bits(got.Min) != math.Float64bits(want.Min) || math.Float64bits(got.Max) != math.Float64bits(want.Max) ||
		math.Float64bits(got.AbsMax) != math.Float64bits(want.AbsMax) {
		t.Fatalf("%s: extremes differ in sign: got %v %v %v, want %v %v %v", what, got.Min, got.Max, got.AbsMax, want.Min, want.Max, want.AbsMax)
	}
}

// TestGGMLIntKernels is the differential test of every integer kernel
// against its twins on weight-like, random and adversarial passes: the
// dequantizing path (ggml's dequantizers, then the F32 kernel) and
// ReferenceStats (ggml's reference dequantizers, then the plain fold). The
// counts and extremes must be identical; the sums within 1e-10 (the squared
// deviations from sumsq − sum·mean lose up to 10 bits where the mean is large
// against the spread). A pass with a non-finite scale must be refused.
func TestGGMLIntKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	var g ggmlScratch
	var vals [blockElems]float64
	for _, ty := range intKernelTypes() {
		kernel := ggmlIntKernels[ty]
		tr, _ := ty.Traits()
		dt, _ := formats.DTypeOfGGML(ty)
		per := ggmlPassElems / tr.BlockElems
		used, refused := 0, 0
		check := func(what string, src []byte) {
			t.Helper()
			got, ok := kernel(src)
			if !ok {
				refused++
				return
			}
			used++
			checkIntAcc(t, ty.String()+" "+what, got, ReferenceStats(dt, src), 1e-10)
			checkIntAcc(t, ty.String()+" "+what+" (dequantizing path)", got, g.dequantStats(dt, ty, src, &vals), 1e-10)
		}
		for round := 0; round < 40; round++ {
			blocks := []int{1, 2, 7, per}[round%4]
			check("weight-like", quantizeLike(rng, ty, blocks, 0, 0.02))
			check("weight-like, offset", quantizeLike(rng, ty, blocks, 0.01, 0.02))
			check("adversarial", adversarialPass(rng, ty, blocks))
		}
		if used < 100 {
			t.Errorf("%v: the kernel took only %d of %d passes", ty, used, used+refused)
		}
		// Every block with a zero scale of either sign: all values ±0.
		for _, h := range []uint16{0x0000, 0x8000} {
			src := adversarialPass(rng, ty, 9)
			for i := 0; i < 9; i++ {
				for _, o := range tr.Scales {
					binary.LittleEndian.PutUint16(src[i*tr.BlockBytes+o:], h)
				}
			}
			check("zero scales", src)
		}
		// Every value −0 (a negative scale times zero quants; for Q4_K
		// d·sc·0 − (+0)), then +0: the extremes' signs must follow.
		for _, neg := range []bool{true, false} {
			if neg && ty == ggml.MXFP4 {
				continue // its zeros are float32(0)·d with d > 0: +0
			}
			src := negZeroBlock(ty, neg)
			check("all zeros", src)
			if got, _ := kernel(src); math.Signbit(got.Min) != neg || math.Signbit(got.Max) != neg {
				t.Errorf("%v: extremes of all-zero values %v %v, want the sign bit %v", ty, got.Min, got.Max, neg)
			}
		}
		// A non-finite scale, any of a block's, hands the pass back (so a
		// pass the kernel takes has no bad scale to count).
		for _, o := range tr.Scales {
			for _, h := range []uint16{0x7e00, 0x7c00, 0xfc00, 0x7c01} {
				src := quantizeLike(rng, ty, 5, 0, 0.02)
				binary.LittleEndian.PutUint16(src[3*tr.BlockBytes+o:], h)
				if _, ok := kernel(src); ok {
					t.Errorf("%v: a pass with scale %#04x at byte %d was not refused", ty, h, o)
				}
			}
		}
		// Values far from zero with a small spread: the sums cannot give the
		// deviations, and the pass is handed back (Q4_K, whose minimum
		// offsets every value; the others are symmetric around zero).
		if ty == ggml.Q4_K || ty == ggml.Q5_K {
			src := quantizeLike(rng, ty, 4, 0, 0.02)
			for i := 0; i < 4; i++ {
				blk := src[i*tr.BlockBytes:]
				binary.LittleEndian.PutUint16(blk[0:], 0x0001)                                      // d: the smallest subnormal
				binary.LittleEndian.PutUint16(blk[2:], 0xbc00)                                      // dmin −1: m1 = −m
				copy(blk[4:16], []byte{1, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xf1, 0xf1, 0xf1, 0xf1}) // sc = 1, m = 63
			}
			if _, ok := kernel(src); ok {
				t.Errorf("%v: a pass of 63 ± 2^-20 was not handed back", ty)
			}
			checkAcc(t, ty.String()+" offset", Stats(dt, src), ReferenceStats(dt, src), 1e-9)
		}
	}
}

// TestGGMLIntKernelsExactSums: on weight-like data the integer kernels' sums
// are those of the dequantized values to float64 rounding (a block's sums are
// exact; only the additions across blocks round), where the reference folds
// value by value.
func TestGGMLIntKernelsExactSums(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for _, ty := range intKernelTypes() {
		kernel := ggmlIntKernels[ty]
		tr, _ := ty.Traits()
		src := quantizeLike(rng, ty, ggmlPassElems/tr.BlockElems, 0.001, 0.02)
		got, ok := kernel(src)
		if !ok {
			t.Fatalf("%v: weight-like pass refused", ty)
		}
		f := make([]float32, ggmlPassElems)
		ggml.DequantizeRef(ty, f, src)
		mean, _, l2 := exactStats(func(yield func(float64)) {
			for _, v := range f {
				yield(float64(v))
			}
		})
		if rel := math.Abs(got.Mean-mean) / math.Abs(mean); rel > 1e-13 {
			t.Errorf("%v: mean %.17g, exact %.17g (%.1e relative)", ty, got.Mean, mean, rel)
		}
		if rel := math.Abs(math.Sqrt(got.SumSq)-l2) / l2; rel > 1e-14 {
			t.Errorf("%v: l2 %.17g, exact %.17g (%.1e relative)", ty, math.Sqrt(got.SumSq), l2, rel)
		}
	}
}

// FuzzGGMLIntKernels holds the integer kernels to the reference on arbitrary
// bytes, the scales forced finite so that the kernels take the pass (and
// Q4_K's and Q5_K's whole-super-block folds to their sub-block ones).
func FuzzGGMLIntKernels(f *testing.F) {
	f.Add(uint8(0), make([]byte, 144))
	f.Add(uint8(2), []byte{0x00, 0x80, 1, 2, 3, 0x88, 0xff})
	types := intKernelTypes()
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		ty := types[int(k)%len(types)]
		tr, _ := ty.Traits()
		dt, _ := formats.DTypeOfGGML(ty)
		src := append([]byte(nil), data[:len(data)/tr.BlockBytes*tr.BlockBytes]...)
		if len(src) > ggmlPassElems/tr.BlockElems*tr.BlockBytes {
			src = src[:ggmlPassElems/tr.BlockElems*tr.BlockBytes]
		}
		for off := 0; off < len(src); off += tr.BlockBytes {
			for _, o := range tr.Scales {
				src[off+o+1] &^= 0x40 // finite
			}
		}
		got, ok := ggmlIntKernels[ty](src)
		if ok {
			checkIntAcc(t, ty.String(), got, ReferenceStats(dt, src), 1e-10)
		}
		if ty == ggml.Q5_K { // q5kFast against q5kSubs alone, bit for bit
			q5kFastOn = false
			want, wantOK := intQ5_K(src)
			q5kFastOn = true
			if ok != wantOK || !reflect.DeepEqual(got, want) {
				t.Fatalf("Q5_K: fast %v %+v, by sub-blocks %v %+v", ok, got, wantOK, want)
			}
			q5kCoreOn = false // and q5kFastVec's vector loop against q5kFast in Go
			goAcc, goOK := intQ5_K(src)
			q5kCoreOn = true
			if ok != goOK || !reflect.DeepEqual(got, goAcc) {
				t.Fatalf("Q5_K: vector loop %v %+v, Go %v %+v", ok, got, goOK, goAcc)
			}
		}
		if ty == ggml.Q4_K { // q4kFast against q4kSubs alone, bit for bit
			q4kFastOn = false
			want, wantOK := intQ4_K(src)
			q4kFastOn = true
			if ok != wantOK || !reflect.DeepEqual(got, want) {
				t.Fatalf("Q4_K: fast %v %+v, by sub-blocks %v %+v", ok, got, wantOK, want)
			}
			// and q4kFastVec's vector loop against q4kFast in Go
			vec := q4kCoreOK
			q4kCoreOK = false
			goAcc, goOK := intQ4_K(src)
			q4kCoreOK = vec
			if ok != goOK || !reflect.DeepEqual(got, goAcc) {
				t.Fatalf("Q4_K: vector loop %v %+v, Go %v %+v", ok, got, goOK, goAcc)
			}
		}
	})
}

// TestPrecisionGGUF scans 10M-value tensors of every type with an integer
// kernel, quantized from weights (centred, and offset by ten times their
// spread, so that about 7 bits of sumsq − sum·mean cancel): mean, std and L2
// within 1e-6 relative of the compensated float64 reference over ggml's
// reference dequantization, as for every other dtype
// (TestPrecisionAdversarial; a mean large enough to hand the passes back is
// TestGGMLIntKernels' case).
func TestPrecisionGGUF(t *testing.T) {
	if testing.Short() {
		t.Skip("10M-value tensors")
	}
	const n = 10_000_000 / 256 * 256
	rng := rand.New(rand.NewPCG(45, 46))
	for _, ty := range intKernelTypes() {
		for _, mu := range []float64{0, 0.2} {
			tr, _ := ty.Traits()
			data := quantizeLike(rng, ty, n/tr.BlockElems, mu, 0.02)
			g := &synth.GGUF{Tensors: []synth.GGUFTensor{{Name: "w", Type: ty, Shape: []uint64{n / 256, 256}, Data: data}}}
			s := scanPath(t, writeGGUF(t, t.TempDir(), "p.gguf", g)).Tensors[0]
			f := make([]float32, n)
			ggml.DequantizeRef(ty, f, data)
			mean, std, l2 := exactStats(func(yield func(float64)) {
				for _, v := range f {
					yield(float64(v))
				}
			})
			rel := func(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }
			em, es, el := rel(s.Mean, mean), rel(s.Std(), std), rel(s.L2(), l2)
			t.Logf("%v mean %g: relative errors %.1e %.1e %.1e", ty, mu, em, es, el)
			if em > 1e-6 || es > 1e-6 || el > 1e-6 {
				t.Errorf("%v (mean %g): relative errors mean %.2e std %.2e l2 %.2e exceed 1e-6", ty, mu, em, es, el)
			}
		}
	}
}

// TestGGUFScanWorkerIndependence scans a GGUF of every type with an integer
// kernel and of a dequantized one (TQ2_0), some blocks with a NaN scale, with
// 1, 2 and 7 workers and through both byte sources: the tensors must be
// identical to the bit (a pass's result depends only on its bytes, and the
// passes only on the chunk size).
func TestGGUFScanWorkerIndependence(t *testing.T) {
	rng := rand.New(rand.NewPCG(47, 48))
	var ts []synth.GGUFTensor
	for i, ty := range append(intKernelTypes(), ggml.TQ2_0) {
		tr, _ := ty.Traits()
		const rows, cols = 96, 512
		var data []byte
		if ty == ggml.TQ2_0 {
			data = synth.QuantBlocks(ty, rows*cols/tr.BlockElems, uint64(i))
		} else {
			data = quantizeLike(rng, ty, rows*cols/tr.BlockElems, 0.001, 0.02)
		}
		if ty == ggml.MXFP4 {
			data[77*tr.BlockBytes] = 255 // d = 2^127: infinities
		} else {
			synth.SetBlockScale(ty, data, 77, 0x7e00)
		}
		ts = append(ts, synth.GGUFTensor{Name: "blk.0." + ty.String() + ".weight", Type: ty, Shape: []uint64{rows, cols}, Data: data})
	}
	path := writeGGUF(t, t.TempDir(), "w.gguf", &synth.GGUF{Tensors: ts})
	var first []string
	for _, src := range []formats.SourceMode{formats.Pread, formats.Mmap} {
		for _, w := range []int{1, 2, 7} {
			r, err := ScanPath(context.Background(), path, Options{Workers: w, ChunkBytes: 40 << 10, Source: src})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ts := range r.Tensors {
				got = append(got, fmt.Sprintf("%+v", *ts)) // shortest exact floats: equal strings, equal bits
			}
			if first == nil {
				first = got
				continue
			}
			if !reflect.DeepEqual(got, first) {
				t.Fatalf("%v, %d workers: tensors differ:\n%v\n%v", src, w, got, first)
			}
		}
	}
}

// kZeroHead writes the first 16 bytes of a Q4_K or Q5_K super-block for a
// zero pass (q4kZeroPass, q5kZeroPass): d, dmin (finite, or any pattern
// with exponent bit 14 clear; dmin d's equal, its negation, double, half or
// ±0) and the six-bit scales and minimums (some scales 0, the minimums often
// k times the scales or 0), and returns k, drawn below kmax.
func kZeroHead(rng *rand.Rand, blk []byte, kmax int) int {
	hd := finiteF16[rng.IntN(len(finiteF16))]
	if rng.IntN(2) == 0 {
		hd = uint16(rng.Uint32()) &^ 0x4000
	}
	hm := []uint16{hd, hd ^ 0x8000, hd + 0x0400, hd - 0x0400, 0, 0x8000}[rng.IntN(6)] &^ 0x4000
	binary.LittleEndian.PutUint16(blk[0:], hd)
	binary.LittleEndian.PutUint16(blk[2:], hm)
	var sc, m [8]int
	k := rng.IntN(kmax)
	for j := range sc {
		sc[j] = []int{0, 1, 2, 3, 4, 63, rng.IntN(64)}[rng.IntN(7)]
		switch rng.IntN(4) {
		case 0:
			m[j] = 0
		case 1:
			m[j] = rng.IntN(64)
		default:
			m[j] = min(63, sc[j]*k, 2*sc[j]*k)
		}
	}
	sb := blk[4:16]
	clear(sb)
	for j := 0; j < 8; j++ {
		if j < 4 {
			sb[j], sb[j+4] = byte(sc[j]), byte(m[j])
		} else {
			sb[j+4] = byte(sc[j]&15 | (m[j]&15)<<4)
			sb[j-4] |= byte(sc[j]>>4) << 6
			sb[j] |= byte(m[j]>>4) << 6
		}
	}
	return k
}

// eachSuperPass calls check, 60 rounds, on passes of Q4_K, Q5_K or Q2_K
// super-blocks (t) of 1, 2, 7, per and more than two batches' length:
// weight-like, with an offset, adversarial, with zero values (zeroPass),
// each super-block wider than the last and every other one negated (d and
// dmin negative: the extremes move on from any of them), and all ±0.
func eachSuperPass(rng *rand.Rand, t ggml.Type, per int, zeroPass func(*rand.Rand, int) []byte, check func(what string, src []byte)) {
	for round := 0; round < 60; round++ {
		blocks := []int{1, 2, 7, per, 2*ggmlSumsBatch/4 + 3}[round%5]
		check("weight-like", quantizeLike(rng, t, blocks, 0, 0.02))
		check("weight-like, offset", quantizeLike(rng, t, blocks, 0.01, 0.02))
		check("adversarial", adversarialPass(rng, t, blocks))
		check("zeros", zeroPass(rng, blocks))
		var grow []byte
		for i := 0; i < blocks; i++ {
			blk := quantizeLike(rng, t, 1, 0.001*float64(i%3), 0.02*float64(1+i))
			if i%2 == 1 {
				tr, _ := t.Traits()
				blk[tr.Scales[0]+1] ^= 0x80
				blk[tr.Scales[1]+1] ^= 0x80
			}
			grow = append(grow, blk...)
		}
		check("growing", grow)
		for _, neg := range []bool{true, false} {
			check("all zeros", bytes.Repeat(negZeroBlock(t, neg), blocks))
		}
	}
}

// q4kZeroPass is a pass of Q4_K super-blocks built to have zero values where
// q4kFast must find them: dmin d's equal, its negation, double or half, or
// ±0, the minimums often k times the scales (B = A·k) or 0, some scales 0,
// and the quants often at k.
func q4kZeroPass(rng *rand.Rand, blocks int) []byte {
	b := randomBits(rng, blocks*144)
	for i := 0; i < blocks; i++ {
		blk := b[i*144 : (i+1)*144]
		k := kZeroHead(rng, blk, 16)
		for j := 16; j < 144; j++ {
			if rng.IntN(3) == 0 {
				blk[j] = byte(k | k<<4)
			}
		}
	}
	return b
}

// TestGGMLQ4KFast holds Q4_K's whole-super-block fold (q4kFast) to the
// sub-block one (q4kSubs alone): the accumulators must be identical, bit for
// bit, on weight-like, random, adversarial and zero-rich passes; and the fast
// fold must take most weight-like super-blocks.
func TestGGMLQ4KFast(t *testing.T) {
	defer func() { q4kFastOn = true }()
	rng := rand.New(rand.NewPCG(65, 66))
	dt, _ := formats.DTypeOfGGML(ggml.Q4_K)
	per := ggmlPassElems / 256
	defer func(ok bool) { q4kCoreOK = ok }(q4kCoreOK)
	vec := q4kCoreOK
	check := func(what string, src []byte) {
		t.Helper()
		q4kFastOn = true
		got, gotOK := intQ4_K(src)
		q4kFastOn = false
		want, wantOK := intQ4_K(src)
		if gotOK != wantOK || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: fast %v %+v, by sub-blocks %v %+v", what, gotOK, got, wantOK, want)
		}
		// q4kFastVec's vector loop against q4kFast in Go, bit for bit
		q4kFastOn, q4kCoreOK = true, false
		goAcc, goOK := intQ4_K(src)
		q4kCoreOK = vec
		if gotOK != goOK || !reflect.DeepEqual(got, goAcc) {
			t.Fatalf("%s: vector loop %v %+v, Go %v %+v", what, gotOK, got, goOK, goAcc)
		}
		if gotOK {
			checkIntAcc(t, "Q4_K "+what, got, ReferenceStats(dt, src), 1e-10)
		}
	}
	eachSuperPass(rng, ggml.Q4_K, per, q4kZeroPass, check)
	// q4kFast takes the weight-like super-blocks and finds the zeros the
	// sub-block fold finds.
	var f intFold
	src := quantizeLike(rng, ggml.Q4_K, 64, 0, 0.02)
	var sums [ggmlSumsBatch]uint64
	ggmlSumsQ4_K(src, sums[:])
	took := 0
	for i := 0; i < 64; i++ {
		f = newIntFold()
		b := (*[144]byte)(src[144*i:])
		if f.q4kFast(b, binary.LittleEndian.Uint16(b[0:]), binary.LittleEndian.Uint16(b[2:]), (*[4]uint64)(sums[4*i:])) {
			took++
		}
	}
	if took < 60 {
		t.Errorf("q4kFast took %d of 64 weight-like super-blocks", took)
	}
	// the vector loop (where it runs) folds them without handing them back
	if vec {
		core := 0
		for i := 0; i < 64; i++ {
			b := (*[144]byte)(src[144*i:])
			md, ed := f16Parts(binary.LittleEndian.Uint16(b[0:]))
			mm, em := f16Parts(binary.LittleEndian.Uint16(b[2:]))
			e := min(ed, em)
			if md == 0 || mm == 0 || ed-e > 20 || em-e > 20 {
				continue
			}
			scw, mw := q4kUnpack((*[12]byte)(b[4:16]))
			var c q4kCore
			if !q4kCoreAsm(&sums[4*i], scw, mw, md<<(ed-e), mm<<(em-e), math.Inf(1), math.Inf(-1), 15, &c) {
				core++
			}
		}
		if core < 56 {
			t.Errorf("the vector loop took %d of 64 weight-like super-blocks", core)
		}
	}
	zeros := 0
	for round := 0; round < 20; round++ {
		a, ok := intQ4_K(q4kZeroPass(rng, 16))
		if ok {
			zeros += int(a.Zeros)
		}
	}
	if zeros == 0 {
		t.Errorf("q4kZeroPass made no zero values")
	}
}

// TestQ6KCodeRange holds q6kCodeRange (eight codes to a word) to its plain
// twin on every sub-block of random super-blocks and of super-blocks whose
// every byte is one value (each of the 256).
func TestQ6KCodeRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	check := func(b *[210]byte) {
		t.Helper()
		for j := 0; j < 16; j++ {
			lo, hi := q6kCodeRange(b, j)
			wlo, whi := q6kCodeRangeGo(b, j)
			if lo != wlo || hi != whi {
				t.Fatalf("sub-block %d of % x: codes %d to %d, the twin's %d to %d", j, b[:], lo, hi, wlo, whi)
			}
		}
	}
	for round := 0; round < 2000; round++ {
		check((*[210]byte)(randomBits(rng, 210)))
	}
	for v := 0; v < 256; v++ {
		var b [210]byte
		for i := range b {
			b[i] = byte(v)
		}
		check(&b)
		b[rng.IntN(192)] = byte(rng.IntN(256)) // one code off the rest
		check(&b)
	}
}

// TestPow2 holds pow2 to math.Ldexp over every normal float64 power.
func TestPow2(t *testing.T) {
	for e := -1022; e <= 1023; e++ {
		if got, want := pow2(e), math.Ldexp(1, e); got != want {
			t.Fatalf("pow2(%d) = %v, want %v", e, got, want)
		}
	}
}

// checkQ4Range holds q4Range to the least and greatest of a Q4_0 block's
// codes read one by one.
func checkQ4Range(t *testing.T, b *[18]byte) {
	t.Helper()
	lo, hi := 15, 0
	for j := 0; j < 32; j++ {
		c := int(b[2+j&15] >> (4 * (j >> 4)) & 15)
		lo, hi = min(lo, c), max(hi, c)
	}
	if qlo, qhi := q4Range(b); qlo != lo || qhi != hi {
		t.Fatalf("% x: range %d %d, one by one %d %d", b[:], qlo, qhi, lo, hi)
	}
}

// TestQ4Range runs checkQ4Range on random blocks (both 0 and 15 among the
// codes, or one missing), blocks of codes drawn from a narrower range, and
// blocks whose every byte is one value (each of the 256).
func TestQ4Range(t *testing.T) {
	rng := rand.New(rand.NewPCG(95, 96))
	for round := 0; round < 4000; round++ {
		b := (*[18]byte)(randomBits(rng, 18))
		if round%2 == 1 {
			lo, span := rng.IntN(16), 1+rng.IntN(16)
			for j := 2; j < 18; j++ {
				b[j] = byte(min(15, lo+rng.IntN(span))) | byte(min(15, lo+rng.IntN(span)))<<4
			}
		}
		checkQ4Range(t, b)
	}
	for v := 0; v < 256; v++ {
		var b [18]byte
		for j := range b {
			b[j] = byte(v)
		}
		checkQ4Range(t, &b)
	}
}

// FuzzQ4Range holds q4Range to the codes read one by one on arbitrary bytes.
func FuzzQ4Range(f *testing.F) {
	f.Add(make([]byte, 18))
	f.Add([]byte{0, 0, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= 18 {
			checkQ4Range(t, (*[18]byte)(data))
		}
	})
}
