package diff

import (
	"encoding/binary"
	"math"
	"math/rand"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

var narrowDTypes = []formats.DType{formats.BF16, formats.F16}

// narrowData returns n pairs of dtype dt from gen (A's value and B's), with
// a fraction out of pattern: any 16-bit pattern on either side (NaN,
// infinities, subnormals, BF16 beyond the narrow range), ±0 against ∓0, and
// equal values.
func narrowData(r *rand.Rand, dt formats.DType, n int, out float64, gen func(i int) (float64, float64)) ([]byte, []byte) {
	xs, ys := make([]float64, n), make([]float64, n)
	for i := range xs {
		xs[i], ys[i] = gen(i)
	}
	a, b := encode(dt, xs), encode(dt, ys)
	for i := 0; i < n; i++ {
		if r.Float64() >= out {
			continue
		}
		switch r.Intn(4) {
		case 0:
			binary.LittleEndian.PutUint16(a[2*i:], uint16(r.Uint32()))
		case 1:
			binary.LittleEndian.PutUint16(b[2*i:], uint16(r.Uint32()))
		case 2:
			binary.LittleEndian.PutUint16(a[2*i:], 0)
			binary.LittleEndian.PutUint16(b[2*i:], 0x8000)
		case 3:
			copy(b[2*i:2*i+2], a[2*i:])
		}
	}
	return a, b
}

// TestDiffNarrowAsmMatchesTwin: the narrow assembly loops and their Go twin
// fold the same pairs into the same lanes, to the bit, and stop at the same
// group: every length from 0 to 300 groups (several carries), from lanes
// already holding values, on data in range and on data with patterns out of
// it sprinkled at several rates.
func TestDiffNarrowAsmMatchesTwin(t *testing.T) { forEachNarrowISA(t, testDiffNarrowAsmMatchesTwin) }

func testDiffNarrowAsmMatchesTwin(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for _, dt := range narrowDTypes {
		asm := asmNarrow(dt)
		if asm == nil {
			t.Logf("%s: no narrow assembly loop in this build or on this CPU; the Go twin alone is tested", dt)
			continue
		}
		twin := diffNarrowGo(dt)
		for groups := 0; groups <= 300; groups++ {
			out := []float64{0, 0.001, 0.02, 0.3}[groups%4]
			scale := math.Ldexp(1, r.Intn(60)-30) // within BF16's narrow range
			if dt == formats.F16 {
				scale = math.Ldexp(1, r.Intn(20)-14) // no overflow
			}
			a, b := narrowData(r, dt, 8*groups+8, out, func(int) (float64, float64) {
				x := r.NormFloat64() * scale
				return x, x + r.NormFloat64()*scale*1e-2
			})
			var la, lt diffLanes
			for k := range la.ssa {
				la.ssa[k], la.dot[k], la.max[k] = float64(k), -float64(k), float64(k)/16
				la.same[k%4] = uint64(k)
			}
			lt = la
			ga, gt := 0, 0
			if groups > 0 {
				ga, gt = asm(a, b, groups, &la), twin(a, b, groups, &lt)
			}
			if ga != gt || la != lt {
				t.Fatalf("%s groups=%d out=%v: assembly folded %d groups, twin %d\n asm  %+v\n twin %+v", dt, groups, out, ga, gt, la, lt)
			}
			if out == 0 && ga != groups&^1 {
				t.Fatalf("%s groups=%d: the narrow loop folded %d groups of data in range", dt, groups, ga)
			}
		}
	}
}

// TestNarrowInRange checks the range test of both sides of the narrow loops
// on every 16-bit pattern: the assembly stops at a pair of groups exactly when
// narrowInRange says one of its patterns is out of range.
func TestNarrowInRange(t *testing.T) { forEachNarrowISA(t, testNarrowInRange) }

func testNarrowInRange(t *testing.T) {
	for _, dt := range narrowDTypes {
		asm := asmNarrow(dt)
		for p := 0; p < 1<<16; p++ {
			in := narrowInRange(dt, uint16(p))
			v := narrowValue(dt, binary.LittleEndian.AppendUint16(nil, uint16(p)), 0)
			abs := math.Abs(float64(v))
			var want bool
			if dt == formats.BF16 {
				want = abs == 0 || abs >= math.Ldexp(1, -50) && abs < math.Ldexp(1, 50)
			} else {
				want = !math.IsNaN(abs) && !math.IsInf(abs, 0)
			}
			if in != want {
				t.Fatalf("%s pattern %#04x (%v): in range %v, want %v", dt, p, v, in, want)
			}
			// The range pass: the pattern alone, and at every place of a
			// run of in-range values long enough for the vector pass and
			// its tail (p picks the place and the length).
			if got := narrowRangeGo(dt, binary.LittleEndian.AppendUint16(nil, uint16(p))); got != in {
				t.Fatalf("%s pattern %#04x: narrowRangeGo %v, in range %v", dt, p, got, in)
			}
			if r := narrowRangeOf(dt); r != nil {
				run := make([]byte, 2*(32+p%97))
				for i := 0; i < len(run); i += 2 {
					binary.LittleEndian.PutUint16(run[i:], 0x3F80) // 1 in BF16, 1.875 in F16
				}
				at := p % (len(run) / 2)
				binary.LittleEndian.PutUint16(run[2*at:], uint16(p))
				if got := r(run); got != in {
					t.Fatalf("%s pattern %#04x at %d of %d: the range pass says %v, in range %v", dt, p, at, len(run)/2, got, in)
				}
			}
			if asm == nil {
				continue
			}
			for side := range 2 {
				raw := [2][]byte{make([]byte, 32), make([]byte, 32)}
				binary.LittleEndian.PutUint16(raw[side][2*(p%16):], uint16(p))
				var l diffLanes
				if g := asm(raw[0], raw[1], 2, &l); (g == 2) != in {
					t.Fatalf("%s pattern %#04x on side %d: the assembly folded %d groups; in range %v", dt, p, side, g, in)
				}
			}
		}
	}
}

// TestNarrowRangePass: the range pass agrees with its Go twin on runs of
// every length from 0 to 400 values, in range or with one pattern out of it
// anywhere, and says so of in-range runs.
func TestNarrowRangePass(t *testing.T) { forEachNarrowISA(t, testNarrowRangePass) }

func testNarrowRangePass(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	for _, dt := range narrowDTypes {
		pass := narrowRangeOf(dt)
		if pass == nil {
			t.Logf("%s: no range pass (BF16 alone has one, with AVX2); the Go twin alone is tested", dt)
		}
		for n := 0; n <= 400; n++ {
			a, _ := narrowData(r, dt, n, 0, func(int) (float64, float64) { return r.NormFloat64(), 0 })
			if !narrowRangeGo(dt, a) {
				t.Fatalf("%s n=%d: an in-range run is out of range", dt, n)
			}
			if pass != nil && !pass(a) {
				t.Fatalf("%s n=%d: the range pass finds an in-range run out of range", dt, n)
			}
			for k := 0; k < n && k < 40; k++ {
				b := append([]byte(nil), a...)
				binary.LittleEndian.PutUint16(b[2*r.Intn(n):], uint16(r.Uint32()))
				if want := narrowRangeGo(dt, b); pass != nil && pass(b) != want {
					t.Fatalf("%s n=%d: the range pass says %v, the twin %v", dt, n, pass(b), want)
				}
			}
		}
	}
}

// TestDiffNarrowInMatchesChecking: on pairs of runs wholly in the narrow range,
// the unchecked narrow loop folds what the checking one folds, to the bit,
// into lanes already holding values: every length from 0 to 300 groups; and
// the kernel built on it (inRangeKernel) gives fastKernel's Stats to the bit
// at every length of values, tails included, at scales across the range.
func TestDiffNarrowInMatchesChecking(t *testing.T) {
	forEachNarrowISA(t, testDiffNarrowInMatchesChecking)
}

func testDiffNarrowInMatchesChecking(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	for _, dt := range narrowDTypes {
		in, checking := asmNarrowIn(dt), asmNarrow(dt)
		if in == nil {
			t.Logf("%s: no unchecked narrow loop (BF16 alone has one, with AVX2)", dt)
			continue
		}
		lo, hi := -50, 48 // magnitudes in [2^lo, 2^(hi+1)), rounded
		if dt == formats.F16 {
			lo, hi = -24, 14
		}
		value := func(e int) float64 {
			switch r.Intn(40) {
			case 0:
				return 0
			case 1:
				return math.Copysign(0, -1)
			}
			return math.Copysign(math.Ldexp(1+r.Float64(), max(lo, e)), r.NormFloat64())
		}
		for groups := 0; groups <= 300; groups++ {
			e := lo + r.Intn(hi-lo+1)
			a, b := narrowData(r, dt, 8*groups+8, 0, func(int) (float64, float64) {
				x := value(e)
				if r.Intn(4) == 0 {
					return x, x
				}
				return x, value(e - r.Intn(8))
			})
			if !narrowRangeGo(dt, a) || !narrowRangeGo(dt, b) {
				t.Fatalf("%s groups=%d: test data out of range", dt, groups)
			}
			var li, lc diffLanes
			for k := range li.ssa {
				li.ssb[k], li.ssd[k], li.max[k] = float64(k), float64(k)/3, float64(k)/16
				li.same[k%4] = uint64(k)
			}
			lc = li
			gi, gc := 0, 0
			if groups > 0 {
				gi, gc = in(a, b, groups, &li), checking(a, b, groups, &lc)
			}
			if gi != gc || li != lc || gi != groups&^1 {
				t.Fatalf("%s groups=%d: unchecked folded %d groups, checking %d\n unchecked %+v\n checking  %+v", dt, groups, gi, gc, li, lc)
			}
			for _, n := range []int{8*groups + r.Intn(8), 8 * groups} {
				var si, sc Stats
				inRangeKernel(dt)(a[:2*n], b[:2*n], &si)
				fastKernel(dt, dt)(a[:2*n], b[:2*n], &sc)
				if si != sc {
					t.Fatalf("%s n=%d: unchecked kernel and checking kernel differ\n unchecked %+v\n checking  %+v", dt, n, si, sc)
				}
			}
		}
	}
}

// TestNarrowPrecision checks the narrow loops' proven bounds (kernel_narrow.go)
// against ReferenceCompare (float64, one pass) on adversarial data, through
// the engine's kernel (the assembly where this CPU runs it) and the Go twin:
// the sums within narrowSumBound, narrowDiffBound and narrowDotBound, max
// |B−A| within narrowMaxBound, the counts exact, and the reported metrics
// within their promises (rel_l2 within 9.6u relative, cosine within 16.1u).
// Each case runs over a million pairs (thousands of carries) unless noted.
func TestNarrowPrecision(t *testing.T) {
	const u = narrowU
	const n = 1 << 20
	type tcase struct {
		name string
		dts  []formats.DType
		out  float64
		gen  func(r *rand.Rand) func(i int) (float64, float64)
	}
	cases := []tcase{
		{"weights, a small update", narrowDTypes, 0, func(r *rand.Rand) func(int) (float64, float64) {
			return func(int) (float64, float64) { x := r.NormFloat64() * 0.02; return x, x + r.NormFloat64()*1e-4 }
		}},
		{"a large offset, A close to B", narrowDTypes, 0, func(r *rand.Rand) func(int) (float64, float64) {
			return func(int) (float64, float64) { x := 1000 + r.NormFloat64()*30; return x, x + r.NormFloat64()*2 }
		}},
		{"B close to -A (cosine near -1)", narrowDTypes, 0, func(r *rand.Rand) func(int) (float64, float64) {
			return func(int) (float64, float64) { x := r.NormFloat64(); return x, -x + r.NormFloat64()*1e-3 }
		}},
		{"A·B cancelling (orthogonal halves)", narrowDTypes, 0, func(r *rand.Rand) func(int) (float64, float64) {
			return func(i int) (float64, float64) {
				x := r.NormFloat64() * 100
				if i&1 == 1 {
					return x, -x
				}
				return x, x
			}
		}},
		{"magnitudes over 80 binades", []formats.DType{formats.BF16}, 0, func(r *rand.Rand) func(int) (float64, float64) {
			return func(int) (float64, float64) {
				x := math.Ldexp(1+r.Float64(), r.Intn(80)-40) * float64(1-2*r.Intn(2))
				return x, x * (1 + r.NormFloat64()*1e-2)
			}
		}},
		{"magnitudes over F16's range, subnormals too", []formats.DType{formats.F16}, 0, func(r *rand.Rand) func(int) (float64, float64) {
			return func(int) (float64, float64) {
				x := math.Ldexp(1+r.Float64(), r.Intn(40)-24) * float64(1-2*r.Intn(2))
				return x, x * (1 + r.NormFloat64()*1e-2)
			}
		}},
		{"BF16 at the edges of the narrow range", []formats.DType{formats.BF16}, 0, func(r *rand.Rand) func(int) (float64, float64) {
			return func(int) (float64, float64) {
				e := []int{49, 48, -50, -49}[r.Intn(4)]
				x := math.Ldexp(1+r.Float64()*0.99, e)
				return x, x * (1 + r.Float64()*0.005)
			}
		}},
		{"BF16 in range and beyond (2⁻¹³³ to 2¹²⁷)", []formats.DType{formats.BF16}, 0, func(r *rand.Rand) func(int) (float64, float64) {
			return func(i int) (float64, float64) {
				e := []int{49, -50, 50, -51, 127, -126, -133, 0}[i>>12&7]
				x := math.Ldexp(1+r.Float64(), e)
				return x, x * (1 + r.NormFloat64()*0.3)
			}
		}},
		{"F16 at the edges of its range", []formats.DType{formats.F16}, 0, func(r *rand.Rand) func(int) (float64, float64) {
			return func(int) (float64, float64) {
				switch r.Intn(3) {
				case 0:
					return 65504, -65504
				case 1:
					return math.Ldexp(1, -24), math.Ldexp(float64(r.Intn(1024)), -24)
				}
				return 60000 + r.Float64()*5000, 65504 - r.Float64()*10
			}
		}},
		{"exponents far apart (B−A rounded)", narrowDTypes, 0, func(r *rand.Rand) func(int) (float64, float64) {
			return func(int) (float64, float64) {
				return 1000 * (1 + r.Float64()), math.Ldexp(1+r.Float64(), -20)
			}
		}},
		{"weights with NaN, infinities, ±0 and any pattern sprinkled", narrowDTypes, 0.01, func(r *rand.Rand) func(int) (float64, float64) {
			return func(int) (float64, float64) { x := r.NormFloat64() * 0.02; return x, x + r.NormFloat64()*1e-4 }
		}},
	}
	for ci, c := range cases {
		for _, dt := range c.dts {
			r := rand.New(rand.NewSource(int64(100 + ci)))
			a, b := narrowData(r, dt, n, c.out, c.gen(r))
			want := ReferenceCompare(dt, a, dt, b)
			var engine, twin Stats
			k := fastKernel(dt, dt)
			for i := 0; i < n; i += subBlock {
				e := min(i+subBlock, n)
				k(a[2*i:2*e], b[2*i:2*e], &engine)
				if i < n/4 { // the twin is slow: a quarter of the pairs
					compareGroups(dt, diffNarrowGo(dt), diffGroupsGo(dt), a[2*i:2*e], b[2*i:2*e], &twin)
				}
			}
			wantTwin := ReferenceCompare(dt, a[:n/2], dt, b[:n/2])
			for _, got := range []struct {
				name      string
				got, want Stats
			}{{"engine", engine, want}, {"twin", twin, wantTwin}} {
				g, w := got.got, got.want
				if !narrowAgrees(g, w) {
					t.Errorf("%s, %s, %s: beyond the proven bounds:\n got  %+v\n want %+v", c.name, dt, got.name, g, w)
					continue
				}
				if gr, ok := g.RelL2(); ok {
					wr, _ := w.RelL2()
					if math.Abs(gr-wr) > 9.6*u*wr {
						t.Errorf("%s, %s, %s: rel_l2 %v, want %v within 9.6u", c.name, dt, got.name, gr, wr)
					}
				}
				if gc, ok := g.Cosine(); ok {
					wc, _ := w.Cosine()
					if math.Abs(gc-wc) > 16.1*u {
						t.Errorf("%s, %s, %s: cosine %v, want %v within 16.1u", c.name, dt, got.name, gc, wc)
					}
				}
				if got.name == "engine" {
					t.Logf("%-55s %s: ‖A‖² %.1e, ‖B−A‖² %.1e, A·B %.1e (of ‖A‖‖B‖), max %.1e", c.name, dt,
						relErr(g.SumSqA, w.SumSqA, w.SumSqA), relErr(g.SumSqD, w.SumSqD, w.SumSqD),
						relErr(g.Dot, w.Dot, math.Sqrt(w.SumSqA*w.SumSqB)), relErr(g.MaxAbs, w.MaxAbs, w.MaxAbs))
				}
			}
		}
	}
}

func relErr(got, want, scale float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / scale
}

// TestNarrowStopsAnywhere: a pattern at the edge of the narrow range, in or
// out of it, at every place of runs of several blocks of iterations (the
// AVX-512 loops check 16 iterations at a time before folding them) on
// either side: the assembly stops at the same pair of groups as the twin,
// having folded the same lanes to the bit.
func TestNarrowStopsAnywhere(t *testing.T) { forEachNarrowISA(t, testNarrowStopsAnywhere) }

func testNarrowStopsAnywhere(t *testing.T) {
	r := rand.New(rand.NewSource(14))
	edges := map[formats.DType][]uint16{
		// 2^50 and 2^50 less a step, 2^-50 and the value below it, the
		// smallest subnormal, an infinity, a NaN.
		formats.BF16: {0x5880, 0x587F, 0x2680, 0x267F, 0x0001, 0x7F80, 0x7FC1},
		// the largest finite value, an infinity, NaNs, a subnormal.
		formats.F16: {0x7BFF, 0x7C00, 0x7E00, 0x7C01, 0x0001},
	}
	for _, dt := range narrowDTypes {
		asm := asmNarrow(dt)
		if asm == nil {
			t.Logf("%s: no narrow assembly loop in this build or on this CPU", dt)
			continue
		}
		twin := diffNarrowGo(dt)
		for _, groups := range []int{2, 32, 35, 66} {
			a, b := narrowData(r, dt, 8*groups, 0, func(int) (float64, float64) {
				x := r.NormFloat64()
				return x, x + r.NormFloat64()*1e-2
			})
			for at := 0; at < 8*groups; at++ {
				p := edges[dt][r.Intn(len(edges[dt]))] | uint16(r.Intn(2))<<15
				side := [2][]byte{append([]byte(nil), a...), append([]byte(nil), b...)}
				binary.LittleEndian.PutUint16(side[at&1][2*at:], p)
				var la, lt diffLanes
				for k := range la.ssa {
					la.ssa[k], la.max[k] = float64(k), float64(k)/16
				}
				lt = la
				ga, gt := asm(side[0], side[1], groups, &la), twin(side[0], side[1], groups, &lt)
				if ga != gt || la != lt {
					t.Fatalf("%s groups=%d pattern %#04x at %d: assembly folded %d groups, twin %d\n asm  %+v\n twin %+v", dt, groups, p, at, ga, gt, la, lt)
				}
			}
		}
	}
}
