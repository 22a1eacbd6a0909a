package inspect

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// simdFormats are the dtypes of the vector kernel with their assembly
// availability on this CPU.
func simdFormats() []struct {
	f  *simdFormat
	ok bool
} {
	return []struct {
		f  *simdFormat
		ok bool
	}{{bf16SIMD, simdBF16OK}, {f16SIMD, simdF16OK}}
}

// specials16 are the bit patterns of every class of a 16-bit float of f:
// ±0, the smallest and largest subnormals and normals, ±Inf, quiet and
// signalling NaN of both signs.
func specials16(f *simdFormat) []uint16 {
	var out []uint16
	for _, sign := range []uint16{0, 0x8000} {
		out = append(out, sign, sign|1, sign|f.tiny, sign|(f.tiny+1), sign|f.finite,
			sign|f.pinf, sign|(f.pinf+1), sign|0x7FFF, sign|(f.pinf|f.tiny/2+1))
	}
	return out
}

// withSpecials is weight-like data of f's dtype with a special value written
// at every tenth element, cycling through specials16.
func withSpecials(rng *rand.Rand, f *simdFormat, n int) []byte {
	b := weightsLike(rng, f.dt, n, 0, 0.02)
	sp := specials16(f)
	for i := rng.IntN(10); i < n; i += 10 {
		binary.LittleEndian.PutUint16(b[2*i:], sp[rng.IntN(len(sp))])
	}
	return b
}

// sameLanes compares two lane sets to the bit (NaN sums compare equal: their
// payloads are not part of any result).
func sameLanes(a, b *simdLanes) bool {
	for v := range 4 {
		for j := range 4 {
			if math.Float64bits(a.sum[v][j]) != math.Float64bits(b.sum[v][j]) && !(math.IsNaN(a.sum[v][j]) && math.IsNaN(b.sum[v][j])) {
				return false
			}
			if math.Float64bits(a.sq[v][j]) != math.Float64bits(b.sq[v][j]) && !(math.IsNaN(a.sq[v][j]) && math.IsNaN(b.sq[v][j])) {
				return false
			}
		}
	}
	return a.kmin == b.kmin && a.kmax == b.kmax && a.zeros == b.zeros && a.nontiny == b.nontiny &&
		a.bad == b.bad && a.pinf == b.pinf && a.ninf == b.ninf
}

// checkLanesTwin runs every assembly loop of f on raw against its Go twin.
func checkLanesTwin(t testing.TB, f *simdFormat, raw []byte, what string) {
	t.Helper()
	asm, twin := simdKernel{f, true}, simdKernel{f, false}
	for _, masked := range []bool{false, true} {
		var a, b simdLanes
		a.reset()
		b.reset()
		asm.fill(raw, &a, masked)
		twin.fill(raw, &b, masked)
		if !sameLanes(&a, &b) {
			t.Fatalf("%s %s masked=%v: assembly and Go lanes differ:\n%+v\n%+v", f.dt, what, masked, a, b)
		}
	}
	pivot := 0.75
	var a, b simdLanes
	asm.dev(raw, pivot, &a, false)
	twin.dev(raw, pivot, &b, false)
	clean := true
	for i := 0; i+2 <= len(raw); i += 2 {
		clean = clean && binary.LittleEndian.Uint16(raw[i:])&0x7FFF <= f.finite
	}
	if clean && !sameLanes(&a, &b) {
		t.Fatalf("%s %s: assembly and Go deviation sums differ:\n%+v\n%+v", f.dt, what, a.sum, b.sum)
	}
}

// checkSIMD checks the vector kernel on raw against the reference (counts,
// extremes, FirstBad exactly; mean and sum of squares to within 1e-12, the
// squared deviations to within 1e-9), against the histogram kernel the same
// way, and against its Go twin to the bit.
func checkSIMD(t testing.TB, f *simdFormat, asmOK bool, raw []byte, what string) {
	t.Helper()
	what = fmt.Sprintf("%s %s (%d bytes)", f.dt, what, len(raw))
	twin := simdKernel{f, false}.stats(raw)
	got := twin
	if asmOK {
		got = simdKernel{f, true}.stats(raw)
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", twin) {
			t.Fatalf("%s: assembly %+v, Go twin %+v", what, got, twin)
		}
	}
	ref := ReferenceStats(f.dt, raw)
	checkAcc(t, what+" vs reference", got, ref, 1e-9)
	checkSums(t, what+" vs reference", got, ref, 1e-12)
	var sc scratch
	hist := sc.hist16Stats(f.dt, raw)
	if len(raw) < 2 {
		hist = NewAcc()
	}
	checkAcc(t, what+" vs histogram", got, hist, 1e-9)
	checkSums(t, what+" vs histogram", got, hist, 1e-12)
}

// checkSums compares the mean (on the scale of the values) and the sum of
// squares to within rel.
func checkSums(t testing.TB, what string, got, want Acc, rel float64) {
	t.Helper()
	if want.Finite == 0 {
		return
	}
	rms := math.Sqrt(want.SumSq / float64(want.Finite))
	if !closeTo(got.Mean, want.Mean, math.Max(rms, math.Abs(want.Mean)), rel) || !closeTo(got.SumSq, want.SumSq, want.SumSq, rel) {
		t.Fatalf("%s: mean %.17g sumsq %.17g, want %.17g %.17g (within %g)", what, got.Mean, got.SumSq, want.Mean, want.SumSq, rel)
	}
}

// TestSIMDLanesMatchTwin runs the assembly loops against their Go twins at
// every alignment offset 0..7 and every length 0..300, and on long data,
// with random bit patterns (every class) and with special values injected.
func TestSIMDLanesMatchTwin(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, sf := range simdFormats() {
		if !sf.ok {
			t.Logf("%s: no assembly loops on this CPU", sf.f.dt)
			continue
		}
		for _, data := range [][]byte{randomBits(rng, 2*300+8), withSpecials(rng, sf.f, 304)} {
			for off := range 8 {
				for n := 0; n <= 300; n++ {
					checkLanesTwin(t, sf.f, data[off:off+2*n], fmt.Sprintf("offset %d length %d", off, n))
				}
			}
		}
		for _, n := range []int{simdBlockElems, 3*simdBlockElems + 13} {
			checkLanesTwin(t, sf.f, randomBits(rng, 2*n+1)[1:], "random long")
			checkLanesTwin(t, sf.f, weightsLike(rng, sf.f.dt, n, 0.5, 2), "weights long")
		}
	}
}

// TestSIMDMatchesReference is the differential test of the vector kernel
// against ReferenceStats and the histogram kernel: every alignment 0..7,
// every length 0..300, long data, random bit patterns, weight-like data with
// NaN, infinities, zeros and subnormals injected, and large means.
func TestSIMDMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for _, sf := range simdFormats() {
		f := sf.f
		random := randomBits(rng, 2*300+8)
		special := withSpecials(rng, f, 304)
		weights := weightsLike(rng, f.dt, 304, 0.01, 0.02)
		for off := range 8 {
			for n := 0; n <= 300; n++ {
				for name, data := range map[string][]byte{"random": random, "special": special, "weights": weights} {
					checkSIMD(t, f, sf.ok, data[off:off+2*n], fmt.Sprintf("%s offset %d", name, off))
				}
			}
		}
		long := 3*simdBlockElems + 77
		checkSIMD(t, f, sf.ok, realistic(rng, f.dt, long, 0.001, 0.02, 0, 0, 0), "realistic")
		checkSIMD(t, f, sf.ok, realistic(rng, f.dt, long, -3, 0.5, 5, 3, 2), "realistic with non-finite")
		checkSIMD(t, f, sf.ok, withSpecials(rng, f, long), "long with specials")
		checkSIMD(t, f, sf.ok, randomBits(rng, 2*long), "long random")
		for _, mean := range []float64{1, 30, -200} {
			checkSIMD(t, f, sf.ok, weightsLike(rng, f.dt, long, mean, 0.05), fmt.Sprintf("mean %g", mean))
		}
	}
}

// TestSIMDEverySpecialEverywhere puts each special value at each position
// of a group of 16 (and in the leftover tail) of otherwise ordinary data, in
// the first and in a later block: counts, extremes and FirstBad must be the
// reference's.
func TestSIMDEverySpecialEverywhere(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	for _, sf := range simdFormats() {
		f := sf.f
		base := weightsLike(rng, f.dt, 2*simdBlockElems+21, 0.5, 0.1)
		for _, w := range specials16(f) {
			for _, at := range []int{0, 1, 5, 9, 14, 15, 16, 100, simdBlockElems + 3, 2*simdBlockElems + 20} {
				raw := append([]byte(nil), base...)
				binary.LittleEndian.PutUint16(raw[2*at:], w)
				checkSIMD(t, f, sf.ok, raw, fmt.Sprintf("0x%04x at %d", w, at))
			}
		}
		// Every pattern of the dtype at once, shuffled.
		all := make([]byte, 2*65536)
		for i, p := range rng.Perm(65536) {
			binary.LittleEndian.PutUint16(all[2*i:], uint16(p))
		}
		checkSIMD(t, f, sf.ok, all, "every pattern")
	}
}

// TestSIMDAllNonFinite covers blocks with no finite value, and a block with a
// NaN whose deviations need the second pass (the Go loop skips the NaN).
func TestSIMDAllNonFinite(t *testing.T) {
	for _, sf := range simdFormats() {
		f := sf.f
		for _, w := range []uint16{f.pinf, f.ninf, f.pinf + 1, 0xFFFF} {
			raw := make([]byte, 2*(simdBlockElems+50))
			for i := 0; i < len(raw); i += 2 {
				binary.LittleEndian.PutUint16(raw[i:], w)
			}
			checkSIMD(t, f, sf.ok, raw, fmt.Sprintf("all 0x%04x", w))
		}
		one := uint16(0x3C00) // 1.0 in F16
		if f.dt == formats.BF16 {
			one = 0x3F80
		}
		raw := make([]byte, 2*5000)
		for i := 0; i < 5000; i++ {
			w := one
			if i%7 == 0 {
				w++ // the next value up
			}
			binary.LittleEndian.PutUint16(raw[2*i:], w)
		}
		binary.LittleEndian.PutUint16(raw[2*1234:], f.pinf+1)
		checkSIMD(t, f, sf.ok, raw, "near-constant with a NaN")
	}
}

// TestSIMDAlignmentIndependent checks that the result does not depend on
// where the data sits in memory: the same elements at offsets 0..7 give the
// same accumulator to the bit.
func TestSIMDAlignmentIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(47, 48))
	for _, sf := range simdFormats() {
		if !sf.ok {
			continue
		}
		data := realistic(rng, sf.f.dt, 40_001, 0.1, 1, 3, 1, 1)
		var first string
		for off := range 8 {
			buf := make([]byte, len(data)+8)
			copy(buf[off:], data)
			got := fmt.Sprintf("%+v", simdKernel{sf.f, true}.stats(buf[off:off+len(data)]))
			if off == 0 {
				first = got
			} else if got != first {
				t.Fatalf("%s offset %d: %s, offset 0: %s", sf.f.dt, off, got, first)
			}
		}
	}
}

// TestSIMDPrecisionNearConstant checks the second pass: a large mean with a
// tiny spread, where sumsq - sum·mean cancels, against the compensated
// reference of precision_test.go.
func TestSIMDPrecisionNearConstant(t *testing.T) {
	rng := rand.New(rand.NewPCG(49, 50))
	for _, sf := range simdFormats() {
		f := sf.f
		for _, c := range []struct{ mean, std float64 }{{1, 0.01}, {250, 0.5}, {-3e4, 20}, {1, 0}} {
			n := 200_003
			raw := weightsLike(rng, f.dt, n, c.mean, c.std)
			got := simdKernel{f, sf.ok}.stats(raw)
			mean, std, l2 := exactStats(func(yield func(float64)) {
				for i := 0; i < n; i++ {
					yield(float64(f.toF32(binary.LittleEndian.Uint16(raw[2*i:]))))
				}
			})
			rel := func(g, w float64) float64 {
				if w == 0 {
					return math.Abs(g)
				}
				return math.Abs(g-w) / math.Abs(w)
			}
			if rel(got.Mean, mean) > 1e-12 || rel(got.Std(), std) > 1e-9 || rel(got.L2(), l2) > 1e-12 {
				t.Fatalf("%s mean %g std %g: got mean %.17g std %.17g l2 %.17g, want %.17g %.17g %.17g",
					f.dt, c.mean, c.std, got.Mean, got.Std(), got.L2(), mean, std, l2)
			}
		}
	}
}

// TestSIMDFallback switches the vector kernel off, as on a CPU without AVX2:
// BF16 and F16 must go to the histogram kernel (in Stats and in the engine)
// and give exactly its result; switched on, Stats gives the vector kernel's.
func TestSIMDFallback(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	saveB, saveF := simdBF16OK, simdF16OK
	defer func() { simdBF16OK, simdF16OK = saveB, saveF }()
	for _, sf := range simdFormats() {
		raw := realistic(rng, sf.f.dt, 3*hist16MinElems, 0, 0.02, 2, 1, 1)
		simdBF16OK, simdF16OK = false, false
		if simdHandles(sf.f.dt) || foldMode(sf.f.dt, int64(len(raw))) != foldHist16 {
			t.Fatalf("%s: vector kernel still chosen when switched off", sf.f.dt)
		}
		var sc scratch
		if got, want := Stats(sf.f.dt, raw), sc.hist16Stats(sf.f.dt, raw); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s fallback: Stats %+v, histogram %+v", sf.f.dt, got, want)
		}
		simdBF16OK, simdF16OK = saveB, saveF
		if !sf.ok {
			continue
		}
		if !simdHandles(sf.f.dt) || foldMode(sf.f.dt, int64(len(raw))) != foldKernel {
			t.Fatalf("%s: vector kernel not chosen on a CPU that has it", sf.f.dt)
		}
		if got, want := Stats(sf.f.dt, raw), (simdKernel{sf.f, true}).stats(raw); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Stats %+v, vector kernel %+v", sf.f.dt, got, want)
		}
	}
}

// FuzzSIMDBF16 is the differential fuzz target of the vector kernel: any
// bytes at any alignment, BF16 and F16, assembly against the Go twin to the
// bit and against the reference and the histogram kernel.
func FuzzSIMDBF16(f *testing.F) {
	f.Add(uint8(0), []byte{0x80, 0x7F, 0xC1, 0x7F, 0, 0, 0x80, 0xFF, 0, 0x80, 1, 0})
	f.Add(uint8(3), []byte{0x80, 0x3F, 0x80, 0x3F, 0x81, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F,
		0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x81})
	f.Add(uint8(9), []byte{0x00, 0x7C, 0x00, 0xFC, 0x01, 0x7E, 0x00, 0x80, 0xFF, 0x03, 0x00, 0x04, 0xFF, 0x7B, 0xFF, 0xFB,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56})
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		sf := simdFormats()[int(sel)&1]
		if s := int(sel>>1) % 8; s < len(data) {
			data = data[s:]
		}
		if sf.ok {
			checkLanesTwin(t, sf.f, data[:len(data)/2*2], "fuzz")
		}
		checkSIMD(t, sf.f, sf.ok, data, "fuzz")
	})
}

// BenchmarkKernelSIMD measures the vector kernel beside the histogram kernel
// it replaces and its Go twin, on 8 MiB of weight-like data at an odd
// address (as BenchmarkKernel does).
func BenchmarkKernelSIMD(b *testing.B) {
	for _, sf := range simdFormats() {
		f := sf.f
		if sf.ok {
			b.Run(string(f.dt)+"/simd", func(b *testing.B) {
				benchKernel(b, f.dt, func(_ formats.DType, raw []byte) Acc { return simdKernel{f, true}.stats(raw) })
			})
		}
		b.Run(string(f.dt)+"/hist", func(b *testing.B) {
			var sc scratch
			benchKernel(b, f.dt, func(dt formats.DType, raw []byte) Acc { return sc.hist16Stats(dt, raw) })
		})
		b.Run(string(f.dt)+"/twin", func(b *testing.B) {
			benchKernel(b, f.dt, func(_ formats.DType, raw []byte) Acc { return simdKernel{f, false}.stats(raw) })
		})
	}
}
