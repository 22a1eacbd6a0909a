package inspect

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// quantizeQ41Block writes one Q4_1 block of the values x as
// quantize_row_q4_1 does: m the block's minimum, d its range over 15.
func quantizeQ41Block(b []byte, x []float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range x {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	hd, hm := f16Bits((hi-lo)/15), f16Bits(lo)
	binary.LittleEndian.PutUint16(b[0:], hd)
	binary.LittleEndian.PutUint16(b[2:], hm)
	d := float64(ggml.F16ToF32(hd))
	for j, v := range x {
		c := 0
		if d != 0 {
			c = max(0, min(15, int(math.Round((v-lo)/d))))
		}
		b[4+j&15] |= byte(c) << (4 * (j >> 4))
	}
}

// adversarialQ41 makes blk (a random Q4_1 block, its scales already drawn)
// one of the Q4_1 kernel's cases, by case c: m far above d, d and m whose
// sum rounds, m = −k·d (zero values).
func adversarialQ41(rng *rand.Rand, blk []byte, c int) {
	switch c {
	case 1: // m far above d: value by value
		binary.LittleEndian.PutUint16(blk[0:], 0x0400|uint16(rng.IntN(1024)))
		binary.LittleEndian.PutUint16(blk[2:], 0x5800|uint16(rng.IntN(1024)))
	case 2: // c·d + m just past 2^24 units (odd mantissas, m 2^7 above d)
		binary.LittleEndian.PutUint16(blk[0:], 0x3801|uint16(rng.IntN(512))<<1)
		binary.LittleEndian.PutUint16(blk[2:], 0xd401|uint16(rng.IntN(512))<<1)
	case 3: // m = −k·d: zero values at code k
		hd := binary.LittleEndian.Uint16(blk[0:])
		k := rng.IntN(16)
		binary.LittleEndian.PutUint16(blk[2:], f16Bits(-float64(k)*float64(ggml.F16ToF32(hd))))
		for j := 4; j < 20; j++ {
			if rng.IntN(2) == 0 {
				blk[j] = byte(k) | byte(k)<<4
			}
		}
	}
}

// TestGGMLQ4_1Cases holds intQ4_1 to both twins on blocks built for its
// cases (adversarialQ41's), and intQ5_1, now intAffine with Q5_1's codes,
// to Q5_1's per-code reading (q51Code) value by value.
func TestGGMLQ4_1Cases(t *testing.T) {
	rng := rand.New(rand.NewPCG(105, 106))
	dt, _ := formats.DTypeOfGGML(ggml.Q4_1)
	var g ggmlScratch
	var vals [blockElems]float64
	zeros, used := 0, 0
	for round := 0; round < 300; round++ {
		blocks := []int{1, 2, 1 + rng.IntN(ggmlPassElems/32)}[round%3]
		src := randomBits(rng, 20*blocks)
		for i := 0; i < blocks; i++ {
			blk := src[20*i : 20*i+20]
			binary.LittleEndian.PutUint16(blk[0:], finiteF16[rng.IntN(len(finiteF16))])
			binary.LittleEndian.PutUint16(blk[2:], uint16(rng.Uint32())&^0x4000)
			adversarialQ41(rng, blk, 1+rng.IntN(3))
		}
		got, ok := intQ4_1(src)
		if !ok {
			continue
		}
		used++
		zeros += int(got.Zeros)
		checkIntAcc(t, "Q4_1 cases", got, ReferenceStats(dt, src), 1e-10)
		checkIntAcc(t, "Q4_1 cases (dequantizing path)", got, g.dequantStats(dt, ggml.Q4_1, src, &vals), 1e-10)
	}
	if zeros == 0 || used < 100 {
		t.Errorf("%d zero values in %d passes taken", zeros, used)
	}
	// Q5_1's codes as intAffine reads them
	for round := 0; round < 200; round++ {
		b := (*[24]byte)(randomBits(rng, 24))
		var c [32]byte
		affineCodes(ggml.Q5_1, b[:], &c)
		for j := range c {
			if int64(c[j]) != q51Code(b, j) {
				t.Fatalf("Q5_1 code %d of % x: %d, q51Code's %d", j, b[:], c[j], q51Code(b, j))
			}
		}
	}
}

// TestGGMLSumsQ4_1 holds ggmlSumsQ4_1's words to the codes added one by one
// (q41Codes, intAffine's reading) and affineRange to their extremes.
func TestGGMLSumsQ4_1(t *testing.T) {
	rng := rand.New(rand.NewPCG(107, 108))
	src := randomBits(rng, 20*300)
	var out [300]uint64
	ggmlSumsQ4_1(src, out[:])
	for i := range out {
		var c [32]byte
		q41Codes((*[20]byte)(src[20*i:]), &c)
		var s1, s2 uint64
		lo, hi := int64(15), int64(0)
		for _, q := range c {
			s1, s2 = s1+uint64(q), s2+uint64(q)*uint64(q)
			lo, hi = min(lo, int64(q)), max(hi, int64(q))
		}
		if want := s1 | s2<<32; out[i] != want {
			t.Fatalf("block %d: word %#x, one by one %#x", i, out[i], want)
		}
		if l, h := affineRange(ggml.Q4_1, src[20*i:20*i+20]); l != lo || h != hi {
			t.Fatalf("block %d: range %d %d, one by one %d %d", i, l, h, lo, hi)
		}
	}
	// and the codes to ggml's reference dequantizer's (d = 1, m = 0)
	for i := 0; i < 100; i++ {
		b := src[20*i : 20*i+20]
		binary.LittleEndian.PutUint16(b[0:], 0x3c00)
		binary.LittleEndian.PutUint16(b[2:], 0)
		var y [32]float32
		ggml.DequantizeRef(ggml.Q4_1, y[:], b)
		var c [32]byte
		q41Codes((*[20]byte)(b), &c)
		for j := range c {
			if float32(c[j]) != y[j] {
				t.Fatalf("code %d: %d, the reference's %v", j, c[j], y[j])
			}
		}
	}
}
