package inspect

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// iq4Nearest is the index of the kvalues_iq4nl entry nearest x (the lower
// on a tie), as best_index_int8 picks it.
func iq4Nearest(x float64) byte {
	best := 0
	for k := 1; k < 16; k++ {
		if math.Abs(x-float64(iq4Table[k])) < math.Abs(x-float64(iq4Table[best])) {
			best = k
		}
	}
	return byte(best)
}

// quantizeIQ4Block writes one IQ4_NL or IQ4_XS block of the values x
// roughly as llama.cpp's quantize_row_iq4_nl_impl does: each 32-value
// block's scale maps its value of largest magnitude to −127 (the table's
// first entry), the indices are the nearest entries; IQ4_XS stores each
// sub-block's scale as a 6-bit multiple ls − 32 of a super-block d that maps
// the largest scale to −32.
func quantizeIQ4Block(ty ggml.Type, b []byte, x []float64) {
	scales := make([]float64, len(x)/32)
	maxScale := 0.0
	for ib := range scales {
		mx := 0.0
		for _, v := range x[32*ib : 32*ib+32] {
			if math.Abs(v) > math.Abs(mx) {
				mx = v
			}
		}
		scales[ib] = mx / -127
		if math.Abs(scales[ib]) > math.Abs(maxScale) {
			maxScale = scales[ib]
		}
	}
	put := func(qs []byte, x []float64, dl float64) {
		for j := 0; j < 16; j++ {
			lo, hi := byte(8), byte(8) // 1·dl: the nearest to 0 when dl is 0
			if dl != 0 {
				lo, hi = iq4Nearest(x[j]/dl), iq4Nearest(x[j+16]/dl)
			}
			qs[j] = lo | hi<<4
		}
	}
	if ty == ggml.IQ4_NL {
		h := f16Bits(scales[0])
		binary.LittleEndian.PutUint16(b, h)
		put(b[2:18], x, float64(ggml.F16ToF32(h)))
		return
	}
	h := f16Bits(maxScale / -32)
	binary.LittleEndian.PutUint16(b, h)
	d := float64(ggml.F16ToF32(h))
	var sh uint16
	for ib, s := range scales {
		l := 0
		if d != 0 {
			l = max(-32, min(31, int(math.Round(s/d))))
		}
		ls := l + 32
		b[4+ib/2] |= byte(ls&15) << (4 * (ib & 1))
		sh |= uint16(ls>>4) << (2 * ib)
		put(b[8+16*ib:], x[32*ib:], d*float64(l))
	}
	binary.LittleEndian.PutUint16(b[2:], sh)
}

// adversarialIQ4 makes blk (a random block of ty, its scales already drawn)
// one of the cases of the IQ4_XS and Q4_1 kernels, by case c
// (adversarialPass's draw): IQ4_XS sub-blocks with ls = 32 (zero values of
// both signs) or every ls 0 or 63; Q4_1's adversarialQ41.
func adversarialIQ4(rng *rand.Rand, ty ggml.Type, blk []byte, c int) {
	switch {
	case ty == ggml.Q4_1:
		adversarialQ41(rng, blk, c)
	case ty == ggml.IQ4_XS && c == 1: // some ls = 32: low nibble 0, high pair 2
		sh := binary.LittleEndian.Uint16(blk[2:])
		for ib := rng.IntN(4); ib < 8; ib += 1 + rng.IntN(3) {
			blk[4+ib/2] &^= 15 << (4 * (ib & 1))
			sh = sh&^(3<<(2*ib)) | 2<<(2*ib)
		}
		binary.LittleEndian.PutUint16(blk[2:], sh)
		if rng.IntN(3) == 0 { // every ls 32: only zeros, their signs the extremes'
			binary.LittleEndian.PutUint16(blk[2:], 0xaaaa)
			clear(blk[4:8])
			if rng.IntN(2) == 0 { // one index: zeros of one sign
				copy(blk[8:], bytes.Repeat([]byte{byte(rng.IntN(256))}, 128))
			}
		}
	case ty == ggml.IQ4_XS && c == 2: // every ls 0 (−32) or 63 (31), d extreme
		v := []byte{0, 0xff}[rng.IntN(2)]
		blk[2], blk[3], blk[4], blk[5], blk[6], blk[7] = v, v, v, v, v, v
		binary.LittleEndian.PutUint16(blk[0:], []uint16{0x7bff, 0xfbff, 0x0001, 0x83ff}[rng.IntN(4)])
	}
}

// iq4nlZeroBlock is an IQ4_NL block whose every value is −0 (d = −0 times
// positive entries) or +0.
func iq4nlZeroBlock(neg bool) []byte {
	b := bytes.Repeat([]byte{0x88}, 18) // k = 1
	binary.LittleEndian.PutUint16(b, uint16(b2u(neg))<<15)
	return b
}

// iq4SumsOneByOne is Σk, the count of k < 0 and Σk² over the 32 indices of
// qs, one by one.
func iq4SumsOneByOne(qs *[16]byte) (s1, neg, s2 int64) {
	for _, c := range qs {
		for _, n := range [2]byte{c & 15, c >> 4} {
			k := iq4Table[n]
			s1, s2 = s1+k, s2+k*k
			neg += int64(b2u(k < 0))
		}
	}
	return
}

// checkIQ4Sums holds iq4Sums and nibbleRange16 to the indices read one by
// one, and the table to the reference dequantizer's.
func checkIQ4Sums(t *testing.T, qs *[16]byte) {
	t.Helper()
	s1, neg, s2 := iq4Split(tableSum16(qs, &iq4Sums))
	w1, wn, w2 := iq4SumsOneByOne(qs)
	if s1 != w1 || neg != wn || s2 != w2 {
		t.Fatalf("% x: sums %d %d %d, one by one %d %d %d", qs[:], s1, neg, s2, w1, wn, w2)
	}
	lo, hi := 15, 0
	for _, c := range qs {
		lo, hi = min(lo, int(c&15), int(c>>4)), max(hi, int(c&15), int(c>>4))
	}
	if l, h := nibbleRange16(qs); l != lo || h != hi {
		t.Fatalf("% x: range %d %d, one by one %d %d", qs[:], l, h, lo, hi)
	}
}

// TestIQ4Sums runs checkIQ4Sums on random index bytes and on every byte
// repeated, and holds iq4Table and iq4xsScale to ggml's reference
// dequantizers (d = 1: the values are the entries times ls − 32).
func TestIQ4Sums(t *testing.T) {
	rng := rand.New(rand.NewPCG(101, 102))
	for round := 0; round < 2000; round++ {
		checkIQ4Sums(t, (*[16]byte)(randomBits(rng, 16)))
	}
	for v := 0; v < 256; v++ {
		checkIQ4Sums(t, (*[16]byte)(bytes.Repeat([]byte{byte(v)}, 16)))
	}
	for k := 1; k < 16; k++ {
		if iq4Table[k] <= iq4Table[k-1] || iq4Table[k] == 0 {
			t.Fatalf("the table does not ascend without a zero: %v", iq4Table)
		}
	}
	for round := 0; round < 200; round++ {
		b := (*[136]byte)(randomBits(rng, 136))
		binary.LittleEndian.PutUint16(b[0:], 0x3c00)
		var y [256]float32
		ggml.DequantizeRef(ggml.IQ4_XS, y[:], b[:])
		for ib := 0; ib < 8; ib++ {
			qs := b[8+16*ib:]
			for j := 0; j < 32; j++ {
				want := iq4xsScale(b, ib) * iq4Table[qs[j&15]>>(4*(j>>4))&15]
				if got := y[32*ib+j]; float64(got) != float64(want) {
					t.Fatalf("value %d of sub-block %d: %v, the reference's %v", j, ib, want, got)
				}
			}
		}
		var z [32]float32
		ggml.DequantizeRef(ggml.IQ4_NL, z[:], b[:18])
		for j := 0; j < 32; j++ {
			if want := iq4Table[b[2+j&15]>>(4*(j>>4))&15]; float64(z[j]) != float64(want) {
				t.Fatalf("IQ4_NL value %d: %d, the reference's %v", j, want, z[j])
			}
		}
	}
}

// FuzzIQ4Sums holds iq4Sums and nibbleRange16 to the indices one by one on
// arbitrary bytes.
func FuzzIQ4Sums(f *testing.F) {
	f.Add(make([]byte, 16))
	f.Add(bytes.Repeat([]byte{0xf0, 0x78}, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= 16 {
			checkIQ4Sums(t, (*[16]byte)(data))
		}
	})
}

// TestGGMLIQ4XSSuper holds iq4xsSuper, super-block by super-block, to the
// same super-blocks folded value by value (iq4xsValues, ggml's arithmetic):
// the counts, zeros' signs and extremes identical, the sums within float64
// rounding, on super-blocks built for its cases (ls = 32 sub-blocks, every
// ls at an extreme, subnormal and extreme d of both signs).
func TestGGMLIQ4XSSuper(t *testing.T) {
	rng := rand.New(rand.NewPCG(103, 104))
	dt, _ := formats.DTypeOfGGML(ggml.IQ4_XS)
	zeros := 0
	for round := 0; round < 3000; round++ {
		b := (*[136]byte)(randomBits(rng, 136))
		binary.LittleEndian.PutUint16(b[0:], finiteF16[rng.IntN(len(finiteF16))])
		adversarialIQ4(rng, ggml.IQ4_XS, b[:], 1+rng.IntN(3))
		md, e := f16Parts(binary.LittleEndian.Uint16(b[0:]))
		if md == 0 {
			continue
		}
		fast, plain := newIntFold(), newIntFold()
		var w [8]uint64
		ggmlSumsIQ4_XS(b[:], w[:])
		fast.iq4xsSuper(b, md, pow2(e), &w)
		plain.iq4xsValues(b)
		got, ok1 := fast.acc()
		want, ok2 := plain.acc()
		if ok1 != ok2 {
			t.Fatalf("% x: handed back %v, value by value %v", b[:], !ok1, !ok2)
		}
		if !ok1 {
			continue
		}
		zeros += int(got.Zeros)
		checkIntAcc(t, "IQ4_XS super-block", got, want, 1e-13)
		checkIntAcc(t, "IQ4_XS super-block (reference)", got, ReferenceStats(dt, b[:]), 1e-13)
	}
	if zeros == 0 {
		t.Error("no zero values made")
	}
}

// FuzzIQ4XSSuper holds iq4xsSuper to the value-by-value fold on arbitrary
// super-blocks (d forced finite and nonzero).
func FuzzIQ4XSSuper(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0x3c}, 136))
	f.Add(append([]byte{0x01, 0x80, 0xaa, 0xaa, 0, 0, 0, 0}, bytes.Repeat([]byte{0x78}, 128)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 136 {
			return
		}
		b := (*[136]byte)(append([]byte(nil), data[:136]...))
		b[1] &^= 0x40
		md, e := f16Parts(binary.LittleEndian.Uint16(b[0:]))
		if md == 0 {
			return
		}
		fast, plain := newIntFold(), newIntFold()
		var w [8]uint64
		ggmlSumsIQ4_XS(b[:], w[:])
		fast.iq4xsSuper(b, md, pow2(e), &w)
		plain.iq4xsValues(b)
		got, ok1 := fast.acc()
		want, ok2 := plain.acc()
		if ok1 != ok2 {
			t.Fatalf("% x: handed back %v, value by value %v", b[:], !ok1, !ok2)
		}
		if ok1 {
			checkIntAcc(t, "IQ4_XS super-block", got, want, 1e-13)
		}
	})
}
