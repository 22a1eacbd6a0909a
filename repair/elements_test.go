package repair

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// TestNonFiniteMatchesPlain checks the raw-bits test against the reference
// decoding: exhaustively for every 8- and 16-bit dtype, on random and special
// patterns for the wider ones.
func TestNonFiniteMatchesPlain(t *testing.T) {
	for _, dt := range formats.AllDTypes() {
		u := unitBytes(dt)
		if u == 0 {
			continue
		}
		b := make([]byte, u)
		check := func() {
			if got, want := nonFinite(dt, b), nonFinitePlain(dt, b); got != want {
				t.Fatalf("%s %x: nonFinite %v, reference %v", dt, b, got, want)
			}
		}
		switch u {
		case 1:
			for i := 0; i < 256; i++ {
				b[0] = byte(i)
				check()
			}
		case 2:
			for i := 0; i < 65536; i++ {
				binary.LittleEndian.PutUint16(b, uint16(i))
				check()
			}
		default:
			rng := rand.New(rand.NewPCG(7, uint64(u)))
			for i := 0; i < 200000; i++ {
				for j := range b {
					b[j] = byte(rng.Uint32())
				}
				if i%4 == 0 { // force an all-ones exponent often
					b[u-1] |= 0x7F
					b[u-2] |= 0xF0
				}
				check()
			}
			for _, v := range []float64{0, math.Copysign(0, -1), 1, math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat32, math.SmallestNonzeroFloat64} {
				switch dt {
				case formats.F32, formats.C64:
					binary.LittleEndian.PutUint32(b, math.Float32bits(float32(v)))
				case formats.F64:
					binary.LittleEndian.PutUint64(b, math.Float64bits(v))
				}
				check()
			}
		}
	}
}

func TestMergeElements(t *testing.T) {
	f32 := func(vs ...float32) []byte {
		b := make([]byte, 4*len(vs))
		for i, v := range vs {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	bad := f32(1, nan, 3, -inf, 5, nan)
	good := f32(10, 20, 30, 40, 50, nan)
	r, still := mergeElements(formats.F32, bad, good)
	if r != 3 || still != 1 {
		t.Fatalf("replaced %d, still %d; want 3 and 1", r, still)
	}
	want := f32(1, 20, 3, 40, 5, nan)
	for i := 0; i < 5; i++ {
		if binary.LittleEndian.Uint32(bad[4*i:]) != binary.LittleEndian.Uint32(want[4*i:]) {
			t.Errorf("element %d: %x, want %x", i, bad[4*i:4*i+4], want[4*i:4*i+4])
		}
	}
	// Integers and sub-byte floats have nothing to replace.
	ints := []byte{0xFF, 0xFF, 0xFF, 0x7F}
	if r, _ := mergeElements(formats.I32, ints, make([]byte, 4)); r != 0 || ints[0] != 0xFF {
		t.Error("an integer element was replaced")
	}
	if r, _ := mergeElements(formats.F4, []byte{0xFF}, []byte{0}); r != 0 {
		t.Error("an F4 element was replaced")
	}
	// A complex value is replaced whole when either half is not finite.
	c := f32(1, nan, 3, 4)
	r, _ = mergeElements(formats.C64, c, f32(7, 8, 9, 10))
	if r != 1 || math.Float32frombits(binary.LittleEndian.Uint32(c)) != 7 || math.Float32frombits(binary.LittleEndian.Uint32(c[8:])) != 3 {
		t.Errorf("C64 merge: replaced %d, result %x", r, c)
	}
}
