package inspect

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// mxfp4Nearest is the index of the entry k with k·d nearest x, computed in
// float32 (the first on a tie), as best_index_mxfp4 picks it.
func mxfp4Nearest(x, d float32) byte {
	best, bestErr := 0, float32(math.Abs(float64(float32(mxfp4Table[0])*d-x)))
	for i := 1; i < 16; i++ {
		if err := float32(math.Abs(float64(float32(mxfp4Table[i])*d - x))); err < bestErr {
			best, bestErr = i, err
		}
	}
	return byte(best)
}

// quantizeMXFP4Block writes one MXFP4 block of the 32 values x as ggml's
// quantize_row_mxfp4_ref does: e = ⌊log2 amax⌋ − 2 + 127 (d = 2^(e−128),
// so that amax/d lies in [8, 16): the largest magnitude maps to 8 or 12),
// 0 for an all-zero block, and each index that of the nearest k·d.
func quantizeMXFP4Block(b []byte, x []float64) {
	amax := float32(0)
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(float32(v)))))
	}
	e := 0
	if amax > 0 {
		e = max(0, min(255, int(math.Floor(math.Log2(float64(amax))))-2+127))
	}
	b[0] = byte(e)
	d := ggml.E8M0ToF32Half(byte(e))
	for j := 0; j < 16; j++ {
		b[1+j] = mxfp4Nearest(float32(x[j]), d) | mxfp4Nearest(float32(x[j+16]), d)<<4
	}
}

// mxfp4Exponents are exponents an adversarial MXFP4 block takes: the ends
// of the range the kernel takes (2, 252), their neighbours, 1 (d = 1/2)
// and weight-like ones.
var mxfp4Exponents = []byte{2, 3, 251, 252, 127, 128, 120, 118}

// adversarialMXFP4 gives the blocks of an adversarial MXFP4 pass b
// (adversarialPass's random bytes; MXFP4 has no fp16 scale for it to draw)
// their exponents: each in the range the kernel takes, drawn from
// mxfp4Exponents or at random, and, in one pass of four, one block's
// outside it (0, 1: subnormal values; 253–255: infinite ones), so that the
// pass is handed back. Some blocks hold only zeros (indices 0 and 8), some
// only ±12 and ±8.
func adversarialMXFP4(rng *rand.Rand, ty ggml.Type, b []byte) {
	if ty != ggml.MXFP4 {
		return
	}
	n := len(b) / 17
	for i := 0; i < n; i++ {
		blk := b[17*i : 17*i+17]
		blk[0] = byte(2 + rng.IntN(251))
		if rng.IntN(2) == 0 {
			blk[0] = mxfp4Exponents[rng.IntN(len(mxfp4Exponents))]
		}
		switch rng.IntN(8) {
		case 0: // zeros
			for j := 1; j < 17; j++ {
				blk[j] = []byte{0x00, 0x08, 0x80, 0x88}[rng.IntN(4)]
			}
		case 1: // the extreme entries only
			for j := 1; j < 17; j++ {
				blk[j] = []byte{0x77, 0xff, 0x7f, 0xf7, 0x66, 0xee}[rng.IntN(6)]
			}
		}
	}
	if n > 0 && rng.IntN(4) == 0 {
		b[17*rng.IntN(n)] = []byte{0, 1, 253, 254, 255}[rng.IntN(5)]
	}
}

// mxfp4ZeroBlock is an MXFP4 block whose every value is +0 (MXFP4 has no
// −0: a zero is float32(0)·d with d > 0).
func mxfp4ZeroBlock() []byte {
	b := bytes.Repeat([]byte{0x80}, 17) // indices 0 and 8
	b[0] = 127
	return b
}

// mxfp4SumsOneByOne is Σk, the count of k = 0, Σk² and the least and
// greatest k over the 32 indices of qs, one by one.
func mxfp4SumsOneByOne(qs *[16]byte) (s1, zeros, s2, lo, hi int64) {
	lo, hi = 12, -12
	for _, c := range qs {
		for _, n := range [2]byte{c & 15, c >> 4} {
			k := mxfp4Table[n]
			s1, s2 = s1+k, s2+k*k
			zeros += int64(b2u(k == 0))
			lo, hi = min(lo, k), max(hi, k)
		}
	}
	return
}

// checkMXFP4Sums holds mxfp4Sums and mxfp4Range to the indices read one by
// one.
func checkMXFP4Sums(t *testing.T, qs *[16]byte) {
	t.Helper()
	s1, z, s2 := mxfp4Split(tableSum16(qs, &mxfp4Sums))
	lo, hi := mxfp4Range(qs)
	w1, wz, w2, wlo, whi := mxfp4SumsOneByOne(qs)
	if s1 != w1 || z != wz || s2 != w2 || lo != wlo || hi != whi {
		t.Fatalf("% x: sums %d %d %d, range %d %d; one by one %d %d %d, %d %d", qs[:], s1, z, s2, lo, hi, w1, wz, w2, wlo, whi)
	}
}

// TestMXFP4Sums runs checkMXFP4Sums on random index bytes, on every byte
// repeated and on every byte among a block of one other; holds mxfp4Table
// to the reference dequantizer's (e = 128, d = 1: the values are the
// entries), pow2(e − 128) to E8M0ToF32Half, and mxfp4Exact to the
// exponents whose every value k·d is exact, finite and not subnormal in
// float32, found by computing them.
func TestMXFP4Sums(t *testing.T) {
	rng := rand.New(rand.NewPCG(111, 112))
	for round := 0; round < 2000; round++ {
		checkMXFP4Sums(t, (*[16]byte)(randomBits(rng, 16)))
	}
	for v := 0; v < 256; v++ {
		qs := (*[16]byte)(bytes.Repeat([]byte{byte(v)}, 16))
		checkMXFP4Sums(t, qs)
		qs[rng.IntN(16)] = byte(rng.IntN(256))
		checkMXFP4Sums(t, qs)
	}
	for round := 0; round < 200; round++ {
		b := randomBits(rng, 17)
		b[0] = 128
		var y [32]float32
		ggml.DequantizeRef(ggml.MXFP4, y[:], b)
		for j := 0; j < 32; j++ {
			if want := mxfp4Table[b[1+j&15]>>(4*(j>>4))&15]; float64(y[j]) != float64(want) {
				t.Fatalf("value %d of % x: %d, the reference's %v", j, b, want, y[j])
			}
		}
	}
	for e := 0; e < 256; e++ {
		d := ggml.E8M0ToF32Half(byte(e))
		exact := true
		for _, k := range mxfp4Table {
			v := float32(k) * d
			a := math.Abs(float64(v))
			exact = exact && float64(v) == float64(k)*float64(d) && !math.IsInf(a, 0) && (a == 0 || a >= 0x1p-126)
		}
		if mxfp4Exact(byte(e)) != exact {
			t.Fatalf("e = %d: mxfp4Exact %v, the values say %v", e, mxfp4Exact(byte(e)), exact)
		}
		if exact && pow2(e-128) != float64(d) {
			t.Fatalf("e = %d: d = %v, pow2 %v", e, d, pow2(e-128))
		}
	}
}

// FuzzMXFP4Sums holds mxfp4Sums and mxfp4Range to the indices one by one on
// arbitrary bytes.
func FuzzMXFP4Sums(f *testing.F) {
	f.Add(make([]byte, 16))
	f.Add(bytes.Repeat([]byte{0xf7, 0x08}, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= 16 {
			checkMXFP4Sums(t, (*[16]byte)(data))
		}
	})
}

// TestGGMLMXFP4HandBack: a pass holding one block whose exponent is outside
// [2, 252] (subnormal values at 0 and 1, infinite ones from 253) is handed
// back, and Stats, through the dequantizing path, still counts it as the
// reference does: subnormals, infinities and the first of them. At 2 and
// 252, the ends of the range, the kernel takes the pass and agrees with the
// reference.
func TestGGMLMXFP4HandBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(113, 114))
	dt, _ := formats.DTypeOfGGML(ggml.MXFP4)
	for e := 0; e < 256; e++ {
		for _, blocks := range []int{1, 9, ggmlPassElems / 32} {
			src := quantizeLike(rng, ggml.MXFP4, blocks, 0, 0.02)
			i := rng.IntN(blocks)
			src[17*i] = byte(e)
			src[17*i+1+rng.IntN(16)] = 0xf7 // −12 and 12: infinite from 253
			got, ok := intMXFP4(src)
			want := ReferenceStats(dt, src)
			if ok != mxfp4Exact(byte(e)) {
				t.Fatalf("e = %d, %d blocks: taken %v", e, blocks, ok)
			}
			if ok {
				checkIntAcc(t, "MXFP4 at the range's ends", got, want, 1e-10)
			} else if want.Subnormal+want.PosInf+want.NegInf == 0 {
				t.Fatalf("e = %d: the reference counts no subnormal or infinite value", e)
			}
			checkAcc(t, "MXFP4 through Stats", Stats(dt, src), want, 1e-9)
		}
	}
}

// FuzzGGMLMXFP4 holds intMXFP4 to the reference on arbitrary blocks: a pass
// with an exponent outside [2, 252] must be handed back; the same pass with
// its exponents folded into the range must agree with the reference
// (unless its spread is too small for the sums, ggmlM2Cancel).
func FuzzGGMLMXFP4(f *testing.F) {
	f.Add(append([]byte{2}, bytes.Repeat([]byte{0x7f}, 16)...))
	f.Add(append(mxfp4ZeroBlock(), append([]byte{252}, bytes.Repeat([]byte{0xf7}, 16)...)...))
	dt, _ := formats.DTypeOfGGML(ggml.MXFP4)
	f.Fuzz(func(t *testing.T, data []byte) {
		src := append([]byte(nil), data[:min(len(data)/17, ggmlPassElems/32)*17]...)
		in := true
		for off := 0; off < len(src); off += 17 {
			in = in && mxfp4Exact(src[off])
		}
		if _, ok := intMXFP4(src); ok && !in {
			t.Fatalf("% x: a pass with an exponent outside [2, 252] was taken", src)
		}
		for off := 0; off < len(src); off += 17 {
			src[off] = 2 + src[off]%251
		}
		if got, ok := intMXFP4(src); ok {
			checkIntAcc(t, "MXFP4", got, ReferenceStats(dt, src), 1e-10)
		}
	})
}

// TestGGMLMXFP4Window holds intMXFP4 to the reference on passes whose
// exponents straddle the edges of its int64 window (the first block's
// exponent less 10, plus mxfp4Window) and that run past mxfp4Run blocks
// (the window taken afresh), weight-like and with every entry extreme.
func TestGGMLMXFP4Window(t *testing.T) {
	rng := rand.New(rand.NewPCG(115, 116))
	dt, _ := formats.DTypeOfGGML(ggml.MXFP4)
	taken := 0
	for round := 0; round < 40; round++ {
		blocks := []int{2, 9, mxfp4Run, mxfp4Run + 1, 3*mxfp4Run + 7}[round%5]
		src := quantizeLike(rng, ggml.MXFP4, blocks, 0, 0.02)
		first := 2 + rng.IntN(251)
		for i := 0; i < blocks; i++ {
			e0 := max(2, first-10)
			e := e0 + []int{-1, -2, 0, 1, mxfp4Window - 1, mxfp4Window, mxfp4Window + 5, 10}[rng.IntN(8)]
			src[17*i] = byte(max(2, min(252, e)))
			if round%2 == 1 {
				for j := 1; j < 17; j++ {
					src[17*i+j] = []byte{0x77, 0xff, 0x7f, 0xf7}[rng.IntN(4)]
				}
			}
		}
		src[0] = byte(first)
		got, ok := intMXFP4(src)
		if !ok {
			continue // too little spread for the sums (ggmlM2Cancel)
		}
		taken++
		checkIntAcc(t, "MXFP4 window", got, ReferenceStats(dt, src), 1e-12)
	}
	if taken < 30 {
		t.Errorf("the kernel took %d of 40 passes", taken)
	}
}
