package inspect

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// TestQ51Code holds q51Code to dequantize_row_q5_1's reading of the codes
// (ggml's reference dequantizer with d = 1 and m = 0 gives the codes).
func TestQ51Code(t *testing.T) {
	rng := rand.New(rand.NewPCG(91, 92))
	for round := 0; round < 500; round++ {
		b := (*[24]byte)(randomBits(rng, 24))
		binary.LittleEndian.PutUint16(b[0:], 0x3c00)
		binary.LittleEndian.PutUint16(b[2:], 0)
		var y [32]float32
		ggml.DequantizeRef(ggml.Q5_1, y[:], b[:])
		for j := 0; j < 32; j++ {
			if got, want := q51Code(b, j), int64(y[j]); got != want {
				t.Fatalf("code %d of % x: %d, the reference's %d", j, b[:], got, want)
			}
		}
	}
}

// checkQ51Sums holds q51Sums to the codes added one by one, and q51Range
// to their least and greatest.
func checkQ51Sums(t *testing.T, b *[24]byte) {
	t.Helper()
	var w1, w2 int64
	lo, hi := int64(31), int64(0)
	for j := 0; j < 32; j++ {
		c := q51Code(b, j)
		w1, w2 = w1+c, w2+c*c
		lo, hi = min(lo, c), max(hi, c)
	}
	if s1, s2 := q51Sums(b); s1 != w1 || s2 != w2 {
		t.Fatalf("% x: sums %d %d, one by one %d %d", b[:], s1, s2, w1, w2)
	}
	if clo, chi := q51Range(b); clo != lo || chi != hi {
		t.Fatalf("% x: range %d %d, one by one %d %d", b[:], clo, chi, lo, hi)
	}
}

// TestQ51Sums runs checkQ51Sums on random blocks and on blocks whose every
// byte is one value (each of the 256).
func TestQ51Sums(t *testing.T) {
	rng := rand.New(rand.NewPCG(93, 94))
	for round := 0; round < 2000; round++ {
		checkQ51Sums(t, (*[24]byte)(randomBits(rng, 24)))
	}
	for v := 0; v < 256; v++ {
		checkQ51Sums(t, (*[24]byte)(bytes.Repeat([]byte{byte(v)}, 24)))
	}
}

// FuzzQ51Sums holds q51Sums to the codes added one by one on arbitrary
// bytes.
func FuzzQ51Sums(f *testing.F) {
	f.Add(make([]byte, 24))
	f.Add(bytes.Repeat([]byte{0xff, 0x10, 0x0f}, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= 24 {
			checkQ51Sums(t, (*[24]byte)(data))
		}
	})
}

// TestGGMLQ5_1Cases holds intQ5_1 to both twins on blocks built for its
// cases: m far from d (the value-by-value fold), m = −k·d with codes at k
// (zero values, of both signs of d), m = ±0, d = ±0.
func TestGGMLQ5_1Cases(t *testing.T) {
	rng := rand.New(rand.NewPCG(95, 96))
	dt, _ := formats.DTypeOfGGML(ggml.Q5_1)
	var g ggmlScratch
	var vals [blockElems]float64
	zeros := 0
	for round := 0; round < 200; round++ {
		blocks := []int{1, 2, 1 + rng.IntN(ggmlPassElems/32)}[round%3] // one block: its zero may be an extreme
		src := randomBits(rng, 24*blocks)
		for i := 0; i < blocks; i++ {
			b := (*[24]byte)(src[24*i:])
			hd := finiteF16[rng.IntN(len(finiteF16))]
			if rng.IntN(2) == 0 {
				hd = uint16(rng.Uint32()) &^ 0x4000
			}
			var hm uint16
			k := rng.IntN(32)
			switch rng.IntN(4) {
			case 0: // m far above d: not exact
				hd, hm = 0x0400|uint16(rng.IntN(1024)), 0x5800|uint16(rng.IntN(1024))
			case 1: // m = −k·d (fp16 holds it when k·md fits)
				hm = f16Bits(-float64(k) * float64(ggml.F16ToF32(hd)))
			case 2:
				hm = []uint16{0, 0x8000}[rng.IntN(2)]
			default:
				hm = uint16(rng.Uint32()) &^ 0x4000
			}
			binary.LittleEndian.PutUint16(b[0:], hd)
			binary.LittleEndian.PutUint16(b[2:], hm)
			qh := binary.LittleEndian.Uint32(b[4:])
			for j := 0; j < 32; j++ {
				if rng.IntN(3) == 0 { // code j := k
					b[8+j&15] = b[8+j&15]&^(15<<(4*(j>>4))) | byte(k&15)<<(4*(j>>4))
					qh = qh&^(1<<j) | uint32(k>>4)<<j
				}
			}
			binary.LittleEndian.PutUint32(b[4:], qh)
		}
		got, ok := intQ5_1(src)
		if !ok {
			continue
		}
		zeros += int(got.Zeros)
		checkIntAcc(t, "Q5_1 cases", got, ReferenceStats(dt, src), 1e-10)
		checkIntAcc(t, "Q5_1 cases (dequantizing path)", got, g.dequantStats(dt, ggml.Q5_1, src, &vals), 1e-10)
	}
	if zeros == 0 {
		t.Error("no zero values made")
	}
}
