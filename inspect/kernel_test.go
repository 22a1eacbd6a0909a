package inspect

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/x448/float16"
)

// encode writes v as one element of a byte-aligned dtype into b (float dtypes
// only, plus the integers by truncation).
func encode(dt formats.DType, b []byte, v float64) {
	switch dt {
	case formats.BF16:
		binary.LittleEndian.PutUint16(b, uint16(math.Float32bits(float32(v))>>16))
	case formats.F16:
		binary.LittleEndian.PutUint16(b, float16.Fromfloat32(float32(v)).Bits())
	case formats.F32, formats.C64:
		binary.LittleEndian.PutUint32(b, math.Float32bits(float32(v)))
	case formats.F64, formats.C128:
		binary.LittleEndian.PutUint64(b, math.Float64bits(v))
	default:
		panic("encode: unsupported dtype " + string(dt))
	}
}

// weightsLike makes n elements of a float dtype drawn from N(mean, std), as
// trained weights are (no exact zeros).
func weightsLike(rng *rand.Rand, dt formats.DType, n int, mean, std float64) []byte {
	w := partBits(dt) / 8
	b := make([]byte, n*w)
	for i := 0; i < n; i++ {
		encode(dt, b[i*w:], mean+std*rng.NormFloat64())
	}
	return b
}

// realistic is weightsLike with about 2% exact zeros, and nan NaNs, pinf
// +Infs and ninf -Infs at random places.
func realistic(rng *rand.Rand, dt formats.DType, n int, mean, std float64, nan, pinf, ninf int) []byte {
	w := partBits(dt) / 8
	b := weightsLike(rng, dt, n, mean, std)
	for k := n / 50; k > 0; k-- {
		encode(dt, b[rng.IntN(n)*w:], 0)
	}
	put := func(k int, v float64) {
		for ; k > 0; k-- {
			encode(dt, b[rng.IntN(n)*w:], v)
		}
	}
	put(nan, math.NaN())
	put(pinf, math.Inf(1))
	put(ninf, math.Inf(-1))
	return b
}

// randomBits is n bytes of uniformly random bit patterns: every class of
// value of every dtype (NaN, ±Inf, subnormals, ±0) occurs.
func randomBits(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// sameFloat reports whether two extremes are the same number (NaN matches NaN).
func sameFloat(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// closeTo checks got against want to within rel of scale.
func closeTo(got, want, scale, rel float64) bool {
	if math.IsInf(want, 0) || math.IsNaN(want) || math.IsInf(got, 0) || math.IsNaN(got) || math.Abs(want) > 1e300 || scale > 1e300 {
		return true // overflowed in float64: the order of the sums decides; nothing to compare
	}
	return math.Abs(got-want) <= rel*scale
}

// checkAcc compares a fast accumulator with the reference: counts, extremes
// and the first bad element exactly, the sums to within rel.
func checkAcc(t testing.TB, what string, got, want Acc, rel float64) {
	t.Helper()
	if got.Count != want.Count || got.NaN != want.NaN || got.PosInf != want.PosInf || got.NegInf != want.NegInf ||
		got.Zeros != want.Zeros || got.Subnormal != want.Subnormal || got.Finite != want.Finite || got.FirstBad != want.FirstBad {
		t.Fatalf("%s: counts differ:\n got %+v\nwant %+v", what, got, want)
	}
	if !sameFloat(got.Min, want.Min) || !sameFloat(got.Max, want.Max) || !sameFloat(got.AbsMax, want.AbsMax) {
		t.Fatalf("%s: extremes differ: got min %g max %g absmax %g, want %g %g %g", what, got.Min, got.Max, got.AbsMax, want.Min, want.Max, want.AbsMax)
	}
	if got.Finite == 0 {
		return
	}
	rms := math.Sqrt(want.SumSq / float64(want.Finite))
	// The reference's own M2 is off by up to about n²ε²·SumSq when the spread
	// is tiny against the mean (equal values give it a nonzero M2): M2 is
	// compared to within rel of itself, or of 1e-11·SumSq when that is larger.
	if !closeTo(got.Mean, want.Mean, math.Max(rms, math.Abs(want.Mean)), rel) ||
		!closeTo(got.M2, want.M2, math.Max(want.M2, 1e-11*want.SumSq), rel) || !closeTo(got.SumSq, want.SumSq, want.SumSq, rel) {
		t.Fatalf("%s: sums differ beyond %g relative:\n got mean %.17g m2 %.17g sumsq %.17g\nwant mean %.17g m2 %.17g sumsq %.17g",
			what, rel, got.Mean, got.M2, got.SumSq, want.Mean, want.M2, want.SumSq)
	}
}

// TestStatsMatchesReference is the differential test of every kernel against
// ReferenceStats: every dtype, random bit patterns (all classes of values),
// lengths around the block and histogram thresholds, data at odd addresses.
func TestStatsMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []int{0, 1, 3, 7, 8, 9, blockElems - 1, blockElems, blockElems + 5, hist16MinElems - 1, hist16MinElems, hist16MinElems + 3, 100_003}
	for _, dt := range formats.KnownDTypes() {
		for _, n := range lengths {
			nbytes := n * partBits(dt) / 8
			for _, shift := range []int{0, 1, 3} {
				buf := randomBits(rng, nbytes+shift)
				raw := buf[shift:]
				checkAcc(t, string(dt), Stats(dt, raw), ReferenceStats(dt, raw), statsRel(dt))
			}
		}
	}
}

// TestStatsRealisticFloats runs the kernels on weight-like data with a few
// injected NaN and infinities, where the sums are meaningful: the NaN/±Inf
// counts must equal what was injected and the statistics the reference's.
func TestStatsRealisticFloats(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dt := range []formats.DType{formats.BF16, formats.F16, formats.F32, formats.F64, formats.C64, formats.C128} {
		for _, n := range []int{5, 4000, 70_000} {
			raw := realistic(rng, dt, n, 0.001, 0.02, 0, 0, 0)
			checkAcc(t, string(dt)+" clean", Stats(dt, raw), ReferenceStats(dt, raw), statsRel(dt))
			// Either side of the point where the one-pass variance of a
			// block gives way to two passes (mean²/variance = 4095).
			for _, mean := range []float64{60, -70} {
				raw = weightsLike(rng, dt, n, mean, 1)
				checkAcc(t, fmt.Sprintf("%s mean %g", dt, mean), Stats(dt, raw), ReferenceStats(dt, raw), statsRel(dt))
			}
			raw = realistic(rng, dt, n, -3, 0.5, 2, 1, 1)
			got := Stats(dt, raw)
			checkAcc(t, string(dt)+" with non-finite", got, ReferenceStats(dt, raw), statsRel(dt))
			if got.NonFinite() == 0 || got.NonFinite() > 4 {
				t.Fatalf("%s: %d non-finite, injected 4 (some may overlap)", dt, got.NonFinite())
			}
		}
	}
}

// TestStatsInjectedCounts checks exact NaN/±Inf counts, for every float dtype
// that can encode them, against what was written at known distinct places.
func TestStatsInjectedCounts(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	type special struct {
		nan, pinf, ninf []byte // one element's encoding, nil when the dtype has none
	}
	specials := map[formats.DType]special{
		formats.BF16:        {[]byte{0xC1, 0x7F}, []byte{0x80, 0x7F}, []byte{0x80, 0xFF}},
		formats.F16:         {[]byte{0x01, 0x7E}, []byte{0x00, 0x7C}, []byte{0x00, 0xFC}},
		formats.F32:         {[]byte{1, 0, 0xC0, 0x7F}, []byte{0, 0, 0x80, 0x7F}, []byte{0, 0, 0x80, 0xFF}},
		formats.F64:         {[]byte{1, 0, 0, 0, 0, 0, 0xF8, 0x7F}, []byte{0, 0, 0, 0, 0, 0, 0xF0, 0x7F}, []byte{0, 0, 0, 0, 0, 0, 0xF0, 0xFF}},
		formats.F8_E5M2:     {[]byte{0x7E}, []byte{0x7C}, []byte{0xFC}},
		formats.F8_E4M3:     {[]byte{0xFF}, nil, nil},
		formats.F8_E4M3FNUZ: {[]byte{0x80}, nil, nil},
		formats.F8_E5M2FNUZ: {[]byte{0x80}, nil, nil},
		formats.F8_E8M0:     {[]byte{0xFF}, nil, nil},
	}
	finite := map[formats.DType]byte{ // a finite byte pattern to fill with
		formats.F8_E5M2: 0x3C, formats.F8_E4M3: 0x38, formats.F8_E4M3FNUZ: 0x40, formats.F8_E5M2FNUZ: 0x40, formats.F8_E8M0: 0x7F,
	}
	for dt, sp := range specials {
		w := dt.Size()
		n := 50_000
		raw := make([]byte, n*w+1)[1:] // odd address
		for i := 0; i < n; i++ {
			if w == 1 {
				raw[i] = finite[dt]
			} else {
				encode(dt, raw[i*w:], rng.NormFloat64())
			}
		}
		perm := rng.Perm(n)
		want := map[string]int{"nan": 37, "pinf": 11, "ninf": 5}
		pos := 0
		first := n
		put := func(enc []byte, k int) int {
			if enc == nil {
				return 0
			}
			for j := 0; j < k; j++ {
				copy(raw[perm[pos]*w:], enc)
				first = min(first, perm[pos])
				pos++
			}
			return k
		}
		nan, pinf, ninf := put(sp.nan, want["nan"]), put(sp.pinf, want["pinf"]), put(sp.ninf, want["ninf"])
		for _, chunk := range []int{n, 4096, 777} { // whole, and merged chunk accumulators
			acc := NewAcc()
			for off := 0; off < n; off += chunk {
				a := Stats(dt, raw[off*w:min(n, off+chunk)*w])
				acc.Merge(&a)
			}
			if acc.NaN != uint64(nan) || acc.PosInf != uint64(pinf) || acc.NegInf != uint64(ninf) || acc.FirstBad != int64(first) {
				t.Fatalf("%s chunk %d: NaN %d +Inf %d -Inf %d first %d, want %d %d %d %d", dt, chunk, acc.NaN, acc.PosInf, acc.NegInf, acc.FirstBad, nan, pinf, ninf, first)
			}
			checkAcc(t, string(dt), acc, ReferenceStats(dt, raw), statsRel(dt))
		}
	}
}

// TestDecodeFloat64 compares the fast decoder with formats.Element for every
// dtype, at odd addresses and with a short destination.
func TestDecodeFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, dt := range formats.KnownDTypes() {
		n := 1000
		buf := randomBits(rng, n*partBits(dt)/8+1)
		raw := buf[1:]
		dst := make([]float64, n+10)
		if got := DecodeFloat64(dt, raw, dst); got != n {
			t.Fatalf("%s: decoded %d elements, want %d", dt, got, n)
		}
		for i := 0; i < n; i++ {
			if want := formats.Element(dt, raw, i); !sameFloat(dst[i], want) {
				t.Fatalf("%s element %d: got %g want %g", dt, i, dst[i], want)
			}
		}
		if got := DecodeFloat64(dt, raw, dst[:7]); got != 7 {
			t.Fatalf("%s: short destination: decoded %d, want 7", dt, got)
		}
	}
	if DecodeFloat64("F12", []byte{1, 2, 3}, make([]float64, 4)) != 0 {
		t.Fatal("unknown dtype decoded something")
	}
}

// TestF16TableExhaustive checks the 65536-entry table against the reference
// decoder on every input.
func TestF16TableExhaustive(t *testing.T) {
	tab := f16Table()
	for i := 0; i < 65536; i++ {
		if want := formats.F16ToFloat64(uint16(i)); !sameFloat(float64(tab[i]), want) {
			t.Fatalf("0x%04x: table %g, reference %g", i, tab[i], want)
		}
	}
}

// FuzzStats is the differential fuzz target between every kernel and
// ReferenceStats: any bytes, any dtype, any alignment.
func FuzzStats(f *testing.F) {
	f.Add(uint8(14), uint8(0), []byte{0x80, 0x7F, 0xC1, 0x7F, 0, 0, 0x80, 0xFF})
	f.Add(uint8(17), uint8(1), []byte{0, 0, 0xC0, 0x7F, 0, 0, 0x80, 0x3F, 1, 2, 3})
	f.Add(uint8(6), uint8(0), []byte{0x7C, 0xFC, 0x7E, 0x00, 0x80})
	dts := formats.KnownDTypes()
	f.Fuzz(func(t *testing.T, d uint8, shift uint8, data []byte) {
		dt := dts[int(d)%len(dts)]
		if s := int(shift % 8); s < len(data) {
			data = data[s:]
		}
		checkAcc(t, string(dt), Stats(dt, data), ReferenceStats(dt, data), statsRel(dt))
		// The histogram kernels only run on long inputs: repeat the data to get there.
		if dt.Bits() == 16 && len(data) >= 2 {
			long := make([]byte, 0, 2*hist16MinElems+len(data))
			for len(long) < 2*hist16MinElems {
				long = append(long, data...)
			}
			checkAcc(t, string(dt)+" long", Stats(dt, long), ReferenceStats(dt, long), statsRel(dt))
		}
	})
}
