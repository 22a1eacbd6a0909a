package ggml

import (
	"math"
	"math/rand/v2"
	"testing"
)

// specialF16 are the scale patterns that must survive dequantization exactly:
// NaN (quiet, signalling, negative), ±Inf, subnormals, zeros, extremes.
var specialF16 = []uint16{0x7e00, 0x7c01, 0xfe00, 0x7fff, 0x7c00, 0xfc00, 0x0001, 0x03ff, 0x8001, 0x0000, 0x8000, 0x7bff, 0xfbff, 0x3c00, 0x0400}

func TestTableMatchesGGML(t *testing.T) {
	// Block sizes as ggml-common.h asserts them (sizeof(block_*)).
	want := map[Type][2]int{
		F32: {1, 4}, F16: {1, 2}, BF16: {1, 2}, F64: {1, 8}, I8: {1, 1}, I16: {1, 2}, I32: {1, 4}, I64: {1, 8},
		Q4_0: {32, 18}, Q4_1: {32, 20}, Q5_0: {32, 22}, Q5_1: {32, 24}, Q8_0: {32, 34}, Q8_1: {32, 36},
		Q2_K: {256, 84}, Q3_K: {256, 110}, Q4_K: {256, 144}, Q5_K: {256, 176}, Q6_K: {256, 210}, Q8_K: {256, 292},
		IQ2_XXS: {256, 66}, IQ2_XS: {256, 74}, IQ2_S: {256, 82}, IQ3_XXS: {256, 98}, IQ3_S: {256, 110},
		IQ1_S: {256, 50}, IQ1_M: {256, 56}, IQ4_NL: {32, 18}, IQ4_XS: {256, 136},
		TQ1_0: {256, 54}, TQ2_0: {256, 66}, MXFP4: {32, 17}, NVFP4: {64, 36}, Q1_0: {128, 18}, Q2_0: {64, 18},
	}
	if len(want) != len(table) {
		t.Errorf("table has %d types, want %d", len(table), len(want))
	}
	for ty, w := range want {
		tr, ok := ty.Traits()
		if !ok || tr.BlockElems != w[0] || tr.BlockBytes != w[1] {
			t.Errorf("%v: traits %+v, want %d elements in %d bytes", ty, tr, w[0], w[1])
		}
		if back, ok := ByName(ty.String()); !ok || back != ty {
			t.Errorf("ByName(%q) = %v, %v", ty.String(), back, ok)
		}
	}
	for _, id := range []Type{4, 5, 31, 33, 36, 38, 43, 1000} {
		if id.Known() {
			t.Errorf("type %d must not be known", id)
		}
	}
	if s := Type(31).String(); s != "Q4_0_4_4 (type 31, removed from GGUF)" {
		t.Errorf("type 31: %q", s)
	}
	if n, ok := Q4_K.RowBytes(512); !ok || n != 288 {
		t.Errorf("Q4_K.RowBytes(512) = %d, %v", n, ok)
	}
	if _, ok := Q4_K.RowBytes(100); ok {
		t.Error("Q4_K.RowBytes(100) must fail: not whole blocks")
	}
	if _, ok := Q4_K.RowBytes(math.MaxUint64 / 256 * 256); ok {
		t.Error("Q4_K.RowBytes(near 2^64) must overflow")
	}
}

// TestF16Exact checks every binary16 pattern against its definition computed
// in float64, and the table against the reference.
func TestF16Exact(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := F16ToF32Ref(h)
		if F16ToF32(h) != got && !(math.IsNaN(float64(got))) || math.Float32bits(F16ToF32(h)) != math.Float32bits(got) {
			t.Fatalf("%#04x: table %v, ref %v", h, F16ToF32(h), got)
		}
		s, e, m := h>>15, int(h>>10&31), float64(h&1023)
		var want float64
		switch e {
		case 0:
			want = math.Ldexp(m, -24)
		case 31:
			if m == 0 {
				want = math.Inf(1)
			} else {
				want = math.NaN()
			}
		default:
			want = math.Ldexp(1+m/1024, e-15)
		}
		if s == 1 {
			want = -want
		}
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) || math.Float32bits(got)>>31 != uint32(s) || math.Float32bits(got)&0x7fffff != 0x400000|uint32(h&1023)<<13 {
				t.Fatalf("%#04x: NaN must keep sign and payload, quiet, got %#08x", h, math.Float32bits(got))
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != (s == 1) {
			t.Fatalf("%#04x: got %v, want %v", h, got, want)
		}
	}
}

// randomBlocks fills n blocks of t with random bytes and puts special scale
// patterns into about half of them.
func randomBlocks(r *rand.Rand, ty Type, n int) []byte {
	tr := table[ty]
	b := make([]byte, n*tr.BlockBytes)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for i := 0; i < n; i++ {
		blk := b[i*tr.BlockBytes : (i+1)*tr.BlockBytes]
		if r.IntN(2) == 0 {
			continue
		}
		switch {
		case tr.BlockElems == 1:
		case ty == MXFP4:
			blk[0] = []byte{0, 1, 2, 127, 254, 255}[r.IntN(6)]
		case tr.ScaleF32:
			specials := []uint32{0x7fc00000, 0x7f800001, 0xff800000, 0x7f800000, 0x00000001, 0x807fffff, 0, 0x7f7fffff}
			v := specials[r.IntN(len(specials))]
			blk[0], blk[1], blk[2], blk[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		default:
			for _, o := range tr.Scales {
				if r.IntN(2) == 0 {
					v := specialF16[r.IntN(len(specialF16))]
					blk[o], blk[o+1] = byte(v), byte(v>>8)
				}
			}
		}
	}
	return b
}

// TestFastMatchesReference holds every fast dequantizer to its reference twin,
// bit for bit, on random blocks with NaN, infinite and subnormal scales.
func TestFastMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, ty := range Types() {
		if !ty.Decodes() {
			if _, ok := ref[ty]; ok {
				t.Errorf("%v: reference without fast kernel", ty)
			}
			continue
		}
		if _, ok := ref[ty]; !ok {
			t.Errorf("%v: fast kernel without reference", ty)
			continue
		}
		tr := table[ty]
		blocks := max(64, 4096/tr.BlockElems)
		for round := 0; round < 8; round++ {
			src := randomBlocks(r, ty, blocks)
			want := make([]float32, blocks*tr.BlockElems)
			got := make([]float32, len(want))
			if n := DequantizeRef(ty, want, src); n != len(want) {
				t.Fatalf("%v: reference wrote %d of %d", ty, n, len(want))
			}
			if n := Dequantize(ty, got, src); n != len(got) {
				t.Fatalf("%v: fast wrote %d of %d", ty, n, len(got))
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					blk := i / tr.BlockElems
					t.Fatalf("%v: value %d (block %d) fast %v (%#08x) reference %v (%#08x); block % x", ty, i, blk,
						got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]), src[blk*tr.BlockBytes:(blk+1)*tr.BlockBytes])
				}
			}
		}
	}
}

// TestNonFiniteScalePoisonsBlock: a NaN scale makes every value of its block
// NaN, and BadScales counts exactly the blocks given one.
func TestNonFiniteScalePoisonsBlock(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, ty := range Types() {
		tr := table[ty]
		if tr.BlockElems == 1 || ty == MXFP4 || ty == NVFP4 {
			continue
		}
		const blocks = 10
		src := make([]byte, blocks*tr.BlockBytes)
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		// make every scale finite (1.0), then poison blocks 2 and 7
		for i := 0; i < blocks; i++ {
			blk := src[i*tr.BlockBytes:]
			switch {
			case ty == IQ1_M:
				for k := 0; k < 4; k++ { // scale 0x3c00 spread over the top nibbles
					w := le16(blk[48+2*k:])&0x0fff | uint16(0x3c00>>(4*k)&0xf)<<12
					blk[48+2*k], blk[49+2*k] = byte(w), byte(w>>8)
				}
			case tr.ScaleF32:
				blk[0], blk[1], blk[2], blk[3] = 0, 0, 0x80, 0x3f
			default:
				for _, o := range tr.Scales {
					blk[o], blk[o+1] = 0x00, 0x3c
				}
			}
		}
		for _, i := range []int{2, 7} {
			blk := src[i*tr.BlockBytes:]
			switch {
			case ty == IQ1_M:
				for k, nib := range []uint16{0x0, 0x0, 0xe, 0x7} { // 0x7e00, a NaN
					w := le16(blk[48+2*k:])&0x0fff | nib<<12
					blk[48+2*k], blk[49+2*k] = byte(w), byte(w>>8)
				}
			case tr.ScaleF32:
				blk[0], blk[1], blk[2], blk[3] = 0, 0, 0xc0, 0x7f
			default:
				blk[tr.Scales[0]], blk[tr.Scales[0]+1] = 0x00, 0x7e
			}
		}
		if got := BadScales(ty, src); got != 2 {
			t.Errorf("%v: BadScales = %d, want 2", ty, got)
		}
		if !ty.Decodes() {
			continue
		}
		vals := make([]float32, blocks*tr.BlockElems)
		Dequantize(ty, vals, src)
		for i, v := range vals {
			blk := i / tr.BlockElems
			poisoned := blk == 2 || blk == 7
			if poisoned != math.IsNaN(float64(v)) {
				t.Fatalf("%v: value %d of block %d is %v", ty, i, blk, v)
			}
		}
	}
}

// TestKnownValues pins a few blocks computed by hand from the C code.
func TestKnownValues(t *testing.T) {
	// Q4_0, d = 0.5: nibble 0 → -4, 15 → 3.5; byte 0xF0: low 0 (value j), high 15 (value j+16)
	b := make([]byte, 18)
	b[0], b[1] = 0x00, 0x38 // 0.5
	b[2] = 0xF0
	y := make([]float32, 32)
	Dequantize(Q4_0, y, b)
	if y[0] != -4 || y[16] != 3.5 || y[1] != -4 {
		t.Errorf("Q4_0: %v", y[:17])
	}
	// Q8_0, d = 2: int8 -128 → -256
	b = make([]byte, 34)
	b[0], b[1] = 0x00, 0x40
	b[2], b[3] = 0x80, 0x7f
	y = make([]float32, 32)
	Dequantize(Q8_0, y, b)
	if y[0] != -256 || y[1] != 254 || y[2] != 0 {
		t.Errorf("Q8_0: %v", y[:3])
	}
	// Q4_K: d = 1, dmin = 1, scale 1 and min 2 for sub-block 0: q 15 → 13.
	b = make([]byte, 144)
	b[0], b[1], b[2], b[3] = 0x00, 0x3c, 0x00, 0x3c
	b[4], b[8] = 1, 2
	b[16] = 0x0f
	y = make([]float32, 256)
	Dequantize(Q4_K, y, b)
	if y[0] != 13 || y[1] != -2 {
		t.Errorf("Q4_K: %v", y[:2])
	}
	// MXFP4: e = 128 → d = 1; code 7 → 12, code 9 → -1
	b = make([]byte, 17)
	b[0], b[1] = 128, 0x97
	y = make([]float32, 32)
	Dequantize(MXFP4, y, b)
	if y[0] != 12 || y[16] != -1 {
		t.Errorf("MXFP4: %v %v", y[0], y[16])
	}
}

func TestGridTypesNotDecoded(t *testing.T) {
	for _, ty := range []Type{IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, NVFP4} {
		if ty.Decodes() {
			t.Errorf("%v must not claim to decode", ty)
		}
		if n := Dequantize(ty, make([]float32, 256), make([]byte, 256)); n != 0 {
			t.Errorf("%v: Dequantize wrote %d values", ty, n)
		}
	}
}
