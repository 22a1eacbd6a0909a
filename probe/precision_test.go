package probe

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// TestRoundingMatchesDefinition checks the bit-level conversions against the
// plain definition (nearest value, ties to even, overflow to Inf) on every
// float16 pattern, the values around every rounding boundary and random bits.
func TestRoundingMatchesDefinition(t *testing.T) {
	check := func(f float32) {
		t.Helper()
		v := float64(f)
		if want, got := roundGeneric(v, 10, -14, 65504), float64(roundF16(f)); !same(want, got) {
			t.Fatalf("roundF16(%g [%08x]) = %g, want %g", f, math.Float32bits(f), got, want)
		}
		if want, got := roundGeneric(v, 7, -126, formats.BF16.MaxFinite()), float64(roundBF16(f)); !same(want, got) {
			t.Fatalf("roundBF16(%g [%08x]) = %g, want %g", f, math.Float32bits(f), got, want)
		}
	}
	for h := 0; h < 1<<16; h++ {
		f := f16ToF32(uint16(h))
		if want := formats.F16ToFloat64(uint16(h)); !same(want, float64(f)) {
			t.Fatalf("f16ToF32(%04x) = %g, want %g", h, f, want)
		}
		check(f)
		b := math.Float32bits(f)
		for _, d := range []int32{-1, 1, 1 << 12, 1<<12 - 1, 1<<12 + 1} { // halfway points and neighbours
			check(math.Float32frombits(uint32(int32(b) + d)))
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1_000_000; i++ {
		check(math.Float32frombits(r.Uint32()))
	}
	for _, f := range []float32{65504, 65519.99, 65520, 70000, -65520, 1e-8, 2.9802322e-08, 5.9604645e-08, 0} {
		check(f)
	}
	if roundF16(65520) != float32(math.Inf(1)) || roundF16(65519) != 65504 {
		t.Fatal("f16 overflow boundary")
	}
}

func same(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b && math.Signbit(a) == math.Signbit(b)
}

// TestDecodeEveryDType: weights of any float dtype are decoded exactly and
// rounded once to the serving dtype.
func TestDecodeEveryDType(t *testing.T) {
	vals := []float64{0, 1, -2.5, 0.1, 448, 1e-3, 70000, math.NaN()}
	for _, src := range []formats.DType{formats.F64, formats.F32, formats.F16, formats.BF16, formats.F8_E4M3, formats.F8_E5M2} {
		raw := make([]byte, len(vals)*src.Size())
		enc := make([]float64, len(vals))
		for i, v := range vals {
			enc[i] = encodeForTest(src, v, raw[i*src.Size():])
		}
		for _, dt := range servingDTypes {
			out := make([]float32, len(vals))
			decode(src, dt, raw, out)
			for i := range vals {
				if want := float64(roundF64(dt, enc[i])); !same(want, float64(out[i])) {
					t.Errorf("%s→%s: element %d (%g) decoded as %g, want %g", src, dt, i, enc[i], out[i], want)
				}
			}
		}
	}
}

// encodeForTest writes v in dtype d (nearest pattern found by search, for the
// 8-bit floats) and returns the value the pattern holds.
func encodeForTest(d formats.DType, v float64, dst []byte) float64 {
	switch d {
	case formats.F64:
		b := math.Float64bits(v)
		for i := 0; i < 8; i++ {
			dst[i] = byte(b >> (8 * i))
		}
	case formats.F32:
		b := math.Float32bits(float32(v))
		for i := 0; i < 4; i++ {
			dst[i] = byte(b >> (8 * i))
		}
	case formats.F16:
		h := f32ToF16(float32(v))
		dst[0], dst[1] = byte(h), byte(h>>8)
	case formats.BF16:
		h := math.Float32bits(roundBF16(float32(v))) >> 16
		dst[0], dst[1] = byte(h), byte(h>>8)
	default:
		best, bestD := 0, math.Inf(1)
		for p := 0; p < 256; p++ {
			x := formats.Decode8(d, uint8(p))
			if dd := math.Abs(x - v); dd < bestD || (math.IsNaN(v) && math.IsNaN(x)) {
				best, bestD = p, dd
				if math.IsNaN(v) {
					break
				}
			}
		}
		dst[0] = byte(best)
	}
	return formats.Element(d, dst, 0)
}
