package inspect

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// simdCase is one dtype of the vector kernels, as the tests see it.
type simdCase struct {
	dt        formats.DType
	ok        bool      // this CPU runs the assembly loops
	asm, twin vecKernel // the kernel with its assembly loops, and with the Go twins alone
	w         int       // bytes per element
	// patterns: largest subnormal and finite magnitudes, infinities, sign, 1.0
	tiny, finite, pinf, ninf, sign, one uint32
	value                               func(uint32) float64
	// sameLanes runs the assembly loops and the Go twins on raw and says
	// where they differ ("" when they agree to the bit).
	sameLanes func(raw []byte) string
	// fallback is the kernel the dispatch uses without the vector kernel.
	fallback func(raw []byte) Acc
}

func simdCases() []*simdCase {
	c16 := func(f *simdFormat, ok bool, one uint32) *simdCase {
		return &simdCase{dt: f.dt, ok: ok, asm: simd16{f, true, nil}, twin: simd16{f, false, nil}, w: 2,
			tiny: uint32(f.tiny), finite: uint32(f.finite), pinf: uint32(f.pinf), ninf: uint32(f.ninf), sign: 0x8000, one: one,
			value:     func(w uint32) float64 { return float64(f.toF32(uint16(w))) },
			sameLanes: func(raw []byte) string { return sameLanes16(f, raw) },
			fallback: func(raw []byte) Acc {
				var sc scratch
				if len(raw) < 2 {
					return NewAcc()
				}
				return sc.hist16Stats(f.dt, raw)
			}}
	}
	return []*simdCase{
		c16(bf16SIMD, simdBF16OK, 0x3F80),
		c16(f16SIMD, simdF16OK, 0x3C00),
		{dt: formats.F32, ok: simdF32OK, asm: simd32{true, nil}, twin: simd32{false, nil}, w: 4,
			tiny: f32Tiny, finite: f32Finite, pinf: f32PInf, ninf: f32NInf, sign: 0x80000000, one: 0x3F800000,
			value:     func(w uint32) float64 { return float64(math.Float32frombits(w)) },
			sameLanes: sameLanes32,
			fallback:  func(raw []byte) Acc { return statsF32(raw, new([blockElems]float64)) }},
	}
}

// put writes pattern p as element i of raw.
func (c *simdCase) put(raw []byte, i int, p uint32) {
	if c.w == 2 {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(p))
	} else {
		binary.LittleEndian.PutUint32(raw[4*i:], p)
	}
}

// specials are the patterns of every class: ±0, the smallest and largest
// subnormals and normals, ±Inf, NaN with the smallest, a middle and the
// largest payload, of both signs.
func (c *simdCase) specials() []uint32 {
	var out []uint32
	for _, s := range []uint32{0, c.sign} {
		out = append(out, s, s|1, s|c.tiny, s|(c.tiny+1), s|c.finite,
			s|c.pinf, s|(c.pinf+1), s|(c.sign-1), s|c.pinf|(c.tiny/2+1))
	}
	return out
}

// withSpecials is weight-like data with a special value at about every
// tenth element.
func (c *simdCase) withSpecials(rng *rand.Rand, n int) []byte {
	b := weightsLike(rng, c.dt, n, 0, 0.02)
	sp := c.specials()
	for i := rng.IntN(10); i < n; i += 10 {
		c.put(b, i, sp[rng.IntN(len(sp))])
	}
	return b
}

// sameFloatBits compares two float64 lanes to the bit (NaN sums compare
// equal: their payloads are not part of any result).
func sameFloatBits(a, b *[4][4]float64) bool {
	for v := range 4 {
		for j := range 4 {
			if math.Float64bits(a[v][j]) != math.Float64bits(b[v][j]) && !(math.IsNaN(a[v][j]) && math.IsNaN(b[v][j])) {
				return false
			}
		}
	}
	return true
}

// allFinite16 reports whether 16-bit data of f holds no NaN or infinity.
func allFinite(raw []byte, w int, finite uint32) bool {
	for i := 0; i+w <= len(raw); i += w {
		p := uint32(binary.LittleEndian.Uint16(raw[i:])) & 0x7FFF
		if w == 4 {
			p = binary.LittleEndian.Uint32(raw[i:]) & 0x7FFFFFFF
		}
		if p > finite {
			return false
		}
	}
	return true
}

// simd512CPU says this CPU runs the AVX-512 loops (simd512OK before any
// test switches it).
var simd512CPU = simd512OK

// eachLoopSet runs fn with each set of assembly loops this CPU has switched
// on in turn: the AVX2 loops, then, where the CPU has AVX-512, those with the
// AVX-512 narrow and count loops. It returns the first difference fn reports
// ("" when none), naming the set.
func eachLoopSet(fn func() string) string {
	save := simd512OK
	defer func() { simd512OK = save }()
	for _, on := range []bool{false, true} {
		if on && !simd512CPU {
			continue
		}
		simd512OK = on
		if d := fn(); d != "" {
			if on {
				return "AVX-512 loops: " + d
			}
			return "AVX2 loops: " + d
		}
	}
	return ""
}

// sameLanes16 runs every 16-bit assembly loop of f, in each set this CPU
// has, against its Go twin.
func sameLanes16(f *simdFormat, raw []byte) string {
	return eachLoopSet(func() string { return sameLanes16Set(f, raw) })
}

// sameLanes16Set runs the 16-bit assembly loops of f switched on against
// their Go twins.
func sameLanes16Set(f *simdFormat, raw []byte) string {
	asm, twin := simd16{f, true, nil}, simd16{f, false, nil}
	for _, masked := range []bool{false, true} {
		var a, b simdLanes
		a.reset()
		b.reset()
		asm.fill(raw, &a, masked)
		twin.fill(raw, &b, masked)
		if !sameFloatBits(&a.sum, &b.sum) || !sameFloatBits(&a.sq, &b.sq) || a.kmin != b.kmin || a.kmax != b.kmax ||
			a.zeros != b.zeros || a.nontiny != b.nontiny || a.bad != b.bad || a.pinf != b.pinf || a.ninf != b.ninf {
			return fmt.Sprintf("masked=%v:\nassembly %+v\nGo       %+v", masked, a, b)
		}
	}
	for _, counting := range []bool{false, true} {
		var a, b simdLanes
		a.reset()
		b.reset()
		asm.narrowFill(raw, &a, counting)
		twin.narrowFill(raw, &b, counting)
		if !counting {
			asm.countFill(raw, &a)
			twin.countFill(raw, &b)
		}
		if !sameFloatBits(&a.sum, &b.sum) || !sameFloatBits(&a.sq, &b.sq) || a.zeros != b.zeros || a.nontiny != b.nontiny ||
			a.smax != b.smax || a.umax != b.umax || a.amin != b.amin {
			return fmt.Sprintf("narrow (counting %v) and count:\nassembly %+v\nGo       %+v", counting, a, b)
		}
	}
	// Either narrow loop gives the same block.
	for _, k := range []simd16{asm, twin} {
		if n := len(raw) / 2; n > 0 && n <= simdBlockElems {
			a, b := vecBlock(k, raw, true, false), vecBlock(k, raw, true, true)
			if fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", b) {
				return fmt.Sprintf("the counting narrow loop differs (asm %v):\n%+v\n%+v", k.asm, a, b)
			}
		}
	}
	if allFinite(raw, 2, uint32(f.finite)) {
		var a, b simdLanes
		asm.devFill(raw, 0.75, &a, false)
		twin.devFill(raw, 0.75, &b, false)
		if !sameFloatBits(&a.sum, &b.sum) || !sameFloatBits(&a.sq, &b.sq) {
			return fmt.Sprintf("deviations:\nassembly %v %v\nGo       %v %v", a.sum, a.sq, b.sum, b.sq)
		}
	}
	return ""
}

// sameLanes32 runs every F32 assembly loop, in each set this CPU has,
// against its Go twin.
func sameLanes32(raw []byte) string {
	return eachLoopSet(func() string { return sameLanes32Set(raw) })
}

// sameLanes32Set runs the F32 assembly loops switched on against their Go
// twins.
func sameLanes32Set(raw []byte) string {
	asm, twin := simd32{true, nil}, simd32{false, nil}
	for _, masked := range []bool{false, true} {
		var a, b simdLanes32
		a.reset()
		b.reset()
		asm.fill(raw, &a, masked)
		twin.fill(raw, &b, masked)
		if !sameFloatBits(&a.sum, &b.sum) || !sameFloatBits(&a.sq, &b.sq) || a.kmin != b.kmin || a.kmax != b.kmax ||
			a.zeros != b.zeros || a.nontiny != b.nontiny || a.bad != b.bad || a.pinf != b.pinf || a.ninf != b.ninf {
			return fmt.Sprintf("masked=%v:\nassembly %+v\nGo       %+v", masked, a, b)
		}
	}
	for _, counting := range []bool{false, true} {
		var a, b simdLanes32
		a.reset()
		b.reset()
		asm.narrowFill(raw, &a, counting)
		twin.narrowFill(raw, &b, counting)
		if !counting {
			asm.countFill(raw, &a)
			twin.countFill(raw, &b)
		}
		if !sameFloatBits(&a.sum, &b.sum) || !sameFloatBits(&a.sq, &b.sq) || a.zeros != b.zeros || a.nontiny != b.nontiny ||
			a.smax != b.smax || a.umax != b.umax || a.amin != b.amin {
			return fmt.Sprintf("narrow (counting %v) and count:\nassembly %+v\nGo       %+v", counting, a, b)
		}
	}
	// Either narrow loop gives the same block.
	for _, k := range []simd32{asm, twin} {
		if n := len(raw) / 4; n > 0 && n <= simdBlockElems {
			a, b := vecBlock(k, raw, true, false), vecBlock(k, raw, true, true)
			if fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", b) {
				return fmt.Sprintf("the counting narrow loop differs (asm %v):\n%+v\n%+v", k.asm, a, b)
			}
		}
	}
	if allFinite(raw, 4, f32Finite) {
		var a, b simdLanes32
		asm.devFill(raw, 0.75, &a, false)
		twin.devFill(raw, 0.75, &b, false)
		if !sameFloatBits(&a.sum, &b.sum) || !sameFloatBits(&a.sq, &b.sq) {
			return fmt.Sprintf("deviations:\nassembly %v %v\nGo       %v %v", a.sum, a.sq, b.sum, b.sq)
		}
	}
	return ""
}

// checkSIMD checks the vector kernel of c on raw: with its assembly loops
// against its Go twin to the bit, and against the reference and the
// fallback kernel (counts, extremes and FirstBad exactly; the mean and the
// sum of squares to within 1e-12, the squared deviations to within 1e-9).
func checkSIMD(t testing.TB, c *simdCase, raw []byte, what string) {
	t.Helper()
	what = fmt.Sprintf("%s %s (%d bytes)", c.dt, what, len(raw))
	got := vecStats(c.twin, raw)
	if c.ok {
		if d := c.sameLanes(raw); d != "" {
			t.Fatalf("%s: assembly and Go lanes differ, %s", what, d)
		}
		if d := eachLoopSet(func() string {
			if a := vecStats(c.asm, raw); fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", got) {
				return fmt.Sprintf("assembly %+v, Go twin %+v", a, got)
			}
			return ""
		}); d != "" {
			t.Fatalf("%s: %s", what, d)
		}
	}
	accRel, sumRel := 1e-9, 1e-12
	if c.w == 2 {
		accRel, sumRel = narrowM2Rel, narrowM2Rel
	} else if c.dt == formats.F32 {
		accRel, sumRel = narrow32M2Rel, narrow32M2Rel
	}
	ref := ReferenceStats(c.dt, raw)
	checkAcc(t, what+" vs reference", got, ref, accRel)
	checkSums(t, what+" vs reference", got, ref, sumRel)
	fb := c.fallback(raw)
	checkAcc(t, what+" vs fallback", got, fb, accRel)
	checkSums(t, what+" vs fallback", got, fb, sumRel)
}

// The bounds kernel_simd.go proves for the statistics of the narrow loops
// (BF16 and F16): the sum of squares relative to itself, the squared
// deviations relative to themselves, the mean relative to the standard
// deviation.
const (
	narrowSumSqRel = 5.4e-7
	narrowM2Rel    = 1.7e-6
	narrowMeanStd  = 5.8e-7
	// the F32 narrow loop (kernel_simd.go)
	narrow32SumSqRel = 3.6e-7
	narrow32M2Rel    = 1.1e-6
	narrow32MeanStd  = 3.9e-7
)

// statsRel is how close Stats comes to ReferenceStats on the sums of dt
// (relative, as checkAcc measures): the narrow loops' bound where the vector
// kernel serves a 16-bit dtype, else 1e-9.
func statsRel(dt formats.DType) float64 {
	switch {
	case (dt == formats.BF16 || dt == formats.F16) && simdHandles(dt):
		return narrowM2Rel
	case (dt == formats.F32 || dt == formats.C64) && simdHandles(formats.F32):
		return narrow32M2Rel
	}
	return 1e-9
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
	for _, c := range simdCases() {
		if !c.ok {
			t.Logf("%s: no assembly loops on this CPU", c.dt)
			continue
		}
		for _, data := range [][]byte{randomBits(rng, c.w*300+8), c.withSpecials(rng, 304)} {
			for off := range 8 {
				for n := 0; n <= 300; n++ {
					if d := c.sameLanes(data[off : off+c.w*n]); d != "" {
						t.Fatalf("%s offset %d length %d: %s", c.dt, off, n, d)
					}
				}
			}
		}
		for _, n := range []int{simdBlockElems, 3*simdBlockElems + 13} {
			for _, data := range [][]byte{randomBits(rng, c.w*n+1)[1:], weightsLike(rng, c.dt, n, 0.5, 2), scaledRuns(rng, c.dt, n)} {
				if d := c.sameLanes(data); d != "" {
					t.Fatalf("%s length %d: %s", c.dt, n, d)
				}
			}
		}
	}
}

// scaledRuns is zero-mean weight-like data whose stretches of 128 elements
// (a run of the F32 narrow loop; half a run of the 16-bit ones) have scales
// 2⁻¹⁰..2¹⁰ apart, at random: the float64 lanes then round as the runs
// are added to them, so the order in which the loops carry runs shows in
// the bits.
func scaledRuns(rng *rand.Rand, dt formats.DType, n int) []byte {
	w := partBits(dt) / 8
	b := make([]byte, n*w)
	scale := 1.0
	for i := range n {
		if i%128 == 0 {
			scale = math.Ldexp(1, rng.IntN(21)-10)
		}
		encode(dt, b[i*w:], scale*rng.NormFloat64())
	}
	return b
}

// sweep is 0, 1, ..., n-1, or with -short every step-th of them and those
// listed in keep: the race pass (go test -race -short) runs these
// single-goroutine kernel sweeps ten times slower, and adds nothing to them
// that the full sweep without -short does not check.
func sweep(n, step int, keep ...int) []int {
	var out []int
	for i := range n {
		if !testing.Short() || i%step == 0 || slices.Contains(keep, i) {
			out = append(out, i)
		}
	}
	return out
}

// TestSIMDMatchesReference is the differential test of the vector kernels
// against ReferenceStats and the kernels they replace: every alignment
// 0..7, every length 0..300, long data, random bit patterns, weight-like data
// with NaN, infinities, zeros and subnormals injected, and large means.
func TestSIMDMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for _, c := range simdCases() {
		data := map[string][]byte{
			"random":  randomBits(rng, c.w*300+8),
			"special": c.withSpecials(rng, 304),
			"weights": weightsLike(rng, c.dt, 304, 0.01, 0.02),
		}
		for _, off := range sweep(8, 3) {
			for _, n := range sweep(301, 4, 1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 299) {
				for name, d := range data {
					checkSIMD(t, c, d[off:off+c.w*n], fmt.Sprintf("%s offset %d", name, off))
				}
			}
		}
		long := 3*simdBlockElems + 77
		checkSIMD(t, c, realistic(rng, c.dt, long, 0.001, 0.02, 0, 0, 0), "realistic")
		checkSIMD(t, c, realistic(rng, c.dt, long, -3, 0.5, 5, 3, 2), "realistic with non-finite")
		checkSIMD(t, c, c.withSpecials(rng, long), "long with specials")
		checkSIMD(t, c, randomBits(rng, c.w*long), "long random")
		for _, mean := range []float64{1, 30, -200} {
			checkSIMD(t, c, weightsLike(rng, c.dt, long, mean, 0.05), fmt.Sprintf("mean %g", mean))
		}
	}
}

// TestSIMDEverySpecialEverywhere puts each special value at each position
// of a group of 16 (and in the leftover tail) of otherwise ordinary data, in
// the first and in later blocks; for the 16-bit dtypes also every pattern at
// once.
func TestSIMDEverySpecialEverywhere(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	for _, c := range simdCases() {
		base := weightsLike(rng, c.dt, 2*simdBlockElems+21, 0.5, 0.1)
		for _, p := range c.specials() {
			at := []int{0, 1, 5, 7, 8, 9, 14, 15, 16, 100, simdBlockElems + 3, 2*simdBlockElems + 20}
			for _, k := range sweep(len(at), 3, len(at)-1) {
				at := at[k]
				raw := append([]byte(nil), base...)
				c.put(raw, at, p)
				checkSIMD(t, c, raw, fmt.Sprintf("0x%x at %d", p, at))
			}
		}
		if c.w == 2 {
			all := make([]byte, 2*65536)
			for i, p := range rng.Perm(65536) {
				c.put(all, i, uint32(p))
			}
			checkSIMD(t, c, all, "every pattern")
		}
	}
}

// TestSIMDAllNonFinite covers blocks with no finite value, and a block with a
// NaN whose deviations need the second pass (which the Go loop then does,
// skipping the NaN).
func TestSIMDAllNonFinite(t *testing.T) {
	for _, c := range simdCases() {
		for _, p := range []uint32{c.pinf, c.ninf, c.pinf + 1, c.sign | (c.sign - 1)} {
			n := simdBlockElems + 50
			raw := make([]byte, c.w*n)
			for i := range n {
				c.put(raw, i, p)
			}
			checkSIMD(t, c, raw, fmt.Sprintf("all 0x%x", p))
		}
		n := 5000
		raw := make([]byte, c.w*n)
		for i := range n {
			p := c.one
			if i%7 == 0 {
				p++ // the next value up
			}
			c.put(raw, i, p)
		}
		c.put(raw, 1234, c.pinf+1)
		checkSIMD(t, c, raw, "near-constant with a NaN")
	}
}

// TestSIMDAlignmentIndependent checks that the result does not depend on
// where the data sits in memory: the same elements at offsets 0..7 give the
// same accumulator to the bit.
func TestSIMDAlignmentIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(47, 48))
	for _, c := range simdCases() {
		if !c.ok {
			continue
		}
		data := realistic(rng, c.dt, 40_001, 0.1, 1, 3, 1, 1)
		if d := eachLoopSet(func() string {
			var first string
			for off := range 8 {
				buf := make([]byte, len(data)+8)
				copy(buf[off:], data)
				got := fmt.Sprintf("%+v", vecStats(c.asm, buf[off:off+len(data)]))
				if off == 0 {
					first = got
				} else if got != first {
					return fmt.Sprintf("offset %d: %s, offset 0: %s", off, got, first)
				}
			}
			return ""
		}); d != "" {
			t.Fatalf("%s %s", c.dt, d)
		}
	}
}

// TestSIMDPrecisionNearConstant checks the second pass: large means with
// tiny spreads, where sumsq - sum·mean cancels, against the compensated
// reference of precision_test.go: the mean to within 1e-12, the standard
// deviation to within 1e-9, the L2 norm to within the narrow loops' bound.
func TestSIMDPrecisionNearConstant(t *testing.T) {
	rng := rand.New(rand.NewPCG(49, 50))
	for _, c := range simdCases() {
		k := c.twin
		if c.ok {
			k = c.asm
		}
		for _, m := range []struct{ mean, std float64 }{{1, 0.01}, {250, 0.5}, {-3e4, 20}, {1, 0}, {1e6, 0.5}} {
			n := 200_003
			raw := weightsLike(rng, c.dt, n, m.mean, m.std)
			got := vecStats(k, raw)
			mean, std, l2 := exactStats(func(yield func(float64)) {
				for i := range n {
					yield(formats.Element(c.dt, raw, i))
				}
			})
			rel := func(g, w float64) float64 {
				if w == 0 {
					return math.Abs(g)
				}
				return math.Abs(g-w) / math.Abs(w)
			}
			// The narrow loops' L2 has their bound; the mean and the
			// deviations come from the float64 second pass, as for F32.
			l2Rel := narrow32SumSqRel / 2
			if c.w == 2 {
				l2Rel = narrowSumSqRel / 2
			}
			if rel(got.Mean, mean) > 1e-12 || rel(got.Std(), std) > 1e-9 || rel(got.L2(), l2) > l2Rel {
				t.Fatalf("%s mean %g std %g: got mean %.17g std %.17g l2 %.17g, want %.17g %.17g %.17g",
					c.dt, m.mean, m.std, got.Mean, got.Std(), got.L2(), mean, std, l2)
			}
		}
	}
}

// TestSIMDFallback switches the vector kernels off, as on a CPU without
// AVX2: the dtypes must go to the kernels they replace (in Stats and in the
// engine) and give exactly their results; switched on, Stats gives the
// vector kernel's.
func TestSIMDFallback(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	saveB, saveF, save32 := simdBF16OK, simdF16OK, simdF32OK
	defer func() { simdBF16OK, simdF16OK, simdF32OK = saveB, saveF, save32 }()
	for _, c := range simdCases() {
		raw := realistic(rng, c.dt, 3*hist16MinElems, 0, 0.02, 2, 1, 1)
		simdBF16OK, simdF16OK, simdF32OK = false, false, false
		if simdHandles(c.dt) {
			t.Fatalf("%s: vector kernel still chosen when switched off", c.dt)
		}
		if c.w == 2 && foldMode(c.dt, int64(len(raw))) != foldHist16 {
			t.Fatalf("%s: the engine does not fall back to the histogram", c.dt)
		}
		if got, want := Stats(c.dt, raw), c.fallback(raw); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s fallback: Stats %+v, fallback kernel %+v", c.dt, got, want)
		}
		simdBF16OK, simdF16OK, simdF32OK = saveB, saveF, save32
		if !c.ok {
			continue
		}
		if !simdHandles(c.dt) || foldMode(c.dt, int64(len(raw))) != foldKernel {
			t.Fatalf("%s: vector kernel not chosen on a CPU that has it", c.dt)
		}
		if got, want := Stats(c.dt, raw), vecStats(c.asm, raw); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Stats %+v, vector kernel %+v", c.dt, got, want)
		}
	}
}

// FuzzSIMDBF16 is the differential fuzz target of the vector kernels (BF16,
// F16 and F32 by the selector): any bytes at any alignment, assembly against
// the Go twin to the bit and against the reference and the fallback kernel.
func FuzzSIMDBF16(f *testing.F) {
	f.Add(uint8(0), []byte{0x80, 0x7F, 0xC1, 0x7F, 0, 0, 0x80, 0xFF, 0, 0x80, 1, 0})
	f.Add(uint8(3), []byte{0x80, 0x3F, 0x80, 0x3F, 0x81, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F,
		0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x80, 0x3F, 0x81})
	f.Add(uint8(7), []byte{0x00, 0x7C, 0x00, 0xFC, 0x01, 0x7E, 0x00, 0x80, 0xFF, 0x03, 0x00, 0x04, 0xFF, 0x7B, 0xFF, 0xFB,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56})
	f.Add(uint8(2), []byte{0, 0, 0x80, 0x7F, 0, 0, 0x80, 0xFF, 1, 0, 0xC0, 0x7F, 0, 0, 0, 0x80, 0xFF, 0xFF, 0x7F, 0,
		0, 0, 0x80, 0x3F, 0, 0, 0x80, 0x3F, 0, 0, 0x80, 0x3F, 0, 0, 0x80, 0x3F, 0, 0, 0x80, 0x3F, 0, 0, 0x80, 0x3F,
		0, 0, 0x80, 0x3F, 0, 0, 0x80, 0x3F, 0, 0, 0x80, 0x3F, 0, 0, 0x80, 0x3F, 0, 0, 0x80, 0x3F, 0, 0, 0x80, 0x3F, 9})
	// F32 (selector 2, offset 0): 3 pairs of groups for the narrow loop and
	// a tail, both signs, a zero and a subnormal.
	f32 := make([]byte, 4*100)
	for i := range 100 {
		binary.LittleEndian.PutUint32(f32[4*i:], math.Float32bits(float32(i-37)*0.01))
	}
	binary.LittleEndian.PutUint32(f32[4*50:], 0x80000001)
	f.Add(uint8(2), f32)
	cases := simdCases()
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		c := cases[int(sel)%len(cases)]
		if s := int(sel/3) % 8; s < len(data) {
			data = data[s:]
		}
		checkSIMD(t, c, data, "fuzz")
	})
}

// BenchmarkKernelSIMD measures each vector kernel beside the kernel it
// replaces and its Go twin, on 8 MiB of weight-like data at an odd address
// (as BenchmarkKernel does).
func BenchmarkKernelSIMD(b *testing.B) {
	for _, c := range simdCases() {
		if c.ok {
			b.Run(string(c.dt)+"/simd", func(b *testing.B) {
				benchKernel(b, c.dt, func(_ formats.DType, raw []byte) Acc { return vecStats(c.asm, raw) })
			})
		}
		b.Run(string(c.dt)+"/replaced", func(b *testing.B) {
			benchKernel(b, c.dt, func(_ formats.DType, raw []byte) Acc { return c.fallback(raw) })
		})
		b.Run(string(c.dt)+"/twin", func(b *testing.B) {
			benchKernel(b, c.dt, func(_ formats.DType, raw []byte) Acc { return vecStats(c.twin, raw) })
		})
	}
}

// BenchmarkKernelSIMDPiece measures the vector kernels on one engine piece
// (readBytes, in the L2 cache as after its pread), where the scan runs them,
// beside a copy of the same bytes (what the pread costs at best), each with
// its time per value. (BenchmarkKernelSIMD compares them with the kernels they
// replace: the histogram is reduced once per chunk, so a piece would not be
// fair to it.) The 16-bit dtypes also run with the float64 loops alone
// ("wide"), the loops the narrow ones replace, and on data with a zero in
// every block (counted by a second pass); F32 also on data like Adam's
// second moments, all positive, both ways. On a CPU with AVX-512, "avx2"
// runs the AVX2 narrow and count loops instead of the AVX-512 ones.
func BenchmarkKernelSIMDPiece(b *testing.B) {
	for _, c := range simdCases() {
		if !c.ok {
			continue
		}
		raw := weightsLike(rand.New(rand.NewPCG(3, 3)), c.dt, readBytes/c.w, 0, 0.02)
		bad := append([]byte(nil), raw...)
		zero := append([]byte(nil), raw...)
		for i := 0; i < len(bad)/c.w; i += simdBlockElems {
			c.put(bad, i+simdBlockElems/2, c.pinf+1) // a NaN in every block: each is folded twice
			c.put(zero, i+simdBlockElems/3, 0)
		}
		run := func(name string, data []byte, f func([]byte)) {
			b.Run(string(c.dt)+name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for range b.N {
					f(data)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(data)/c.w), "ns/value")
			})
		}
		var k vecKernel = simd32{true, new(simdLanes32)}
		if c.w == 2 {
			k = simd16{c.asm.(simd16).f, true, new(simdLanes)}
		}
		run("", raw, func(d []byte) { vecStats(k, d) })
		run("/nan-every-block", bad, func(d []byte) { vecStats(k, d) })
		run("/zero-every-block", zero, func(d []byte) { vecStats(k, d) })
		if simd512CPU { // the same with the AVX2 loops
			save := simd512OK
			simd512OK = false
			run("/avx2", raw, func(d []byte) { vecStats(k, d) })
			run("/avx2-zero-every-block", zero, func(d []byte) { vecStats(k, d) })
			simd512OK = save
		}
		if c.w == 2 {
			run("/wide", raw, func(d []byte) { vecStats(wideOnly{k.(simd16)}, d) })
		} else {
			w := simd32Wide{k.(simd32)}
			run("/wide", raw, func(d []byte) { vecStats(w, d) })
			// Adam's second moments: all positive, the mean of the
			// order of the spread (the narrow loop's blocks take the
			// second pass).
			rng := rand.New(rand.NewPCG(4, 4))
			pos := make([]byte, len(raw))
			for i := 0; i < len(pos); i += 4 {
				g := rng.NormFloat64()
				binary.LittleEndian.PutUint32(pos[i:], math.Float32bits(float32(1e-8*g*g)))
			}
			run("/positive", pos, func(d []byte) { vecStats(k, d) })
			run("/positive-wide", pos, func(d []byte) { vecStats(w, d) })
		}
		dst := make([]byte, len(raw))
		run("/copy", raw, func(d []byte) { copy(dst, d) })
	}
}

// wideOnly is a 16-bit vector kernel without its narrow loops.
type wideOnly struct{ simd16 }

func (wideOnly) narrow([]byte, bool) (laneTotals, bool) { return laneTotals{}, false }

// TestNarrow32Extremes puts every F32 sign and exponent (with the smallest,
// a middle and the largest significand) into blocks the narrow loop folds:
// all positive, all negative (heavy-tailed, so that the mean stays small
// against the spread) and of both signs. The extremes it takes from the raw
// patterns and the smallest magnitude, its range guard and its hand-over of
// NaN and infinities to the masked loop must give exactly the reference's
// counts and extremes, and the assembly the twin's result to the bit.
func TestNarrow32Extremes(t *testing.T) {
	c := simdCases()[2]
	if c.dt != formats.F32 {
		t.Fatal("simdCases()[2] is not F32")
	}
	const n = 4 * 4 * narrowProbe
	bases := map[string]func(i int) float32{
		"positive": func(i int) float32 {
			if i%64 == 0 {
				return 1
			}
			return 0.001 * float32(1+i%7)
		},
		"mixed": func(i int) float32 { return 0.02 * float32(i%13-6) },
	}
	bases["negative"] = func(i int) float32 { return -bases["positive"](i) }
	for name, gen := range bases {
		base := make([]byte, 4*n)
		for i := range n {
			binary.LittleEndian.PutUint32(base[4*i:], math.Float32bits(gen(i)))
		}
		if name != "mixed" { // the base block itself must take the narrow loop
			if _, ok := c.twin.narrow(base, false); !ok {
				t.Fatalf("%s: the base block does not take the narrow loop", name)
			}
		}
		// every biased exponent of both signs (with -short every fifth, and
		// those at the narrow range's ends, 2⁻⁴⁰ and 2⁶⁰, and the NaN/Inf one)
		for _, e := range sweep(512, 5, 86, 87, 186, 187, 255, 256+86, 256+87, 256+186, 256+187, 511) {
			se := uint32(e)
			for _, m := range []uint32{0, 1, 0x400000, 0x7FFFFF} {
				p := se<<23 | m
				raw := append([]byte(nil), base...)
				at := int(se*7+m) % n
				binary.LittleEndian.PutUint32(raw[4*at:], p)
				checkSIMD(t, c, raw, fmt.Sprintf("%s, 0x%08x at %d", name, p, at))
			}
		}
	}
}
