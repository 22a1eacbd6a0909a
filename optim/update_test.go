package optim

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// updateInputs draws n elements of m, v and θ: Adam-like magnitudes, with
// zeros, subnormals, negative second moments and nonfinite values mixed in
// when odd is set.
func updateInputs(rng *rand.Rand, n int, odd bool) (m, v, t []float64) {
	m, v, t = make([]float64, n), make([]float64, n), make([]float64, n)
	special := []float64{0, math.Copysign(0, -1), 5e-324, -1e-310, math.Inf(1), math.Inf(-1), math.NaN(), 1e300, -3}
	for i := range n {
		m[i] = rng.NormFloat64() * math.Pow(10, -float64(rng.IntN(8)))
		v[i] = rng.Float64() * math.Pow(10, -float64(rng.IntN(12)))
		t[i] = rng.NormFloat64() * 0.02
		if odd && rng.IntN(7) == 0 {
			switch rng.IntN(3) {
			case 0:
				m[i] = special[rng.IntN(len(special))]
			case 1:
				v[i] = special[rng.IntN(len(special))]
			default:
				t[i] = special[rng.IntN(len(special))]
			}
		}
	}
	return m, v, t
}

func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

// sameAcc compares two accumulators bit for bit (NaN as NaN).
func sameAcc(a, b *updateAcc) bool {
	if a.n != b.n || a.neg != b.neg || len(a.parts) != len(b.parts) {
		return false
	}
	for l := range 8 {
		if !sameFloat(a.d[l], b.d[l]) || !sameFloat(a.t[l], b.t[l]) {
			return false
		}
	}
	for i := range a.parts {
		if !sameFloat(a.parts[i][0], b.parts[i][0]) || !sameFloat(a.parts[i][1], b.parts[i][1]) {
			return false
		}
	}
	return true
}

// withSumRange runs f with sumRange set to r.
func withSumRange(r int64, f func()) {
	old := sumRange
	sumRange = r
	defer func() { sumRange = old }()
	f()
}

// startedAcc is an accumulator part way into a range (n elements of it
// added, with random lane sums) after some closed ranges.
func startedAcc(rng *rand.Rand) updateAcc {
	var a updateAcc
	a.n = rng.Int64N(sumRange)
	for l := range 8 {
		a.d[l], a.t[l] = rng.Float64(), rng.Float64()
	}
	for range rng.IntN(3) {
		a.parts = append(a.parts, [2]float64{rng.Float64(), rng.Float64()})
	}
	a.neg = uint64(rng.IntN(5))
	return a
}

func cloneAcc(a updateAcc) updateAcc {
	a.parts = slices.Clone(a.parts)
	return a
}

var testConsts = newUpdateConsts(3e-4, 1e-8, 0.9, 0.999, 7)

// TestUpdateSumsTwins checks the vector loop against its plain twin, bit for
// bit, over every length up to 67, from accumulators part way into a range,
// with ranges that close within the elements handed over.
func TestUpdateSumsTwins(t *testing.T) {
	if !updateAsmOK {
		t.Skip("no vector loop on this CPU or architecture: updateSums is its twin")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, r := range []int64{8, 24, 1 << 16} {
		withSumRange(r, func() {
			for _, odd := range []bool{false, true} {
				for n := range 68 {
					for range 20 {
						m, v, th := updateInputs(rng, n, odd)
						k := newUpdateConsts(rng.Float64()*1e-3, 1e-8, 0.9, 0.999, 7)
						start := startedAcc(rng)
						got, want := cloneAcc(start), cloneAcc(start)
						updateSums(m, v, th, &k, &got)
						updateSumsGo(m, v, th, &k, &want)
						if !sameAcc(&got, &want) {
							t.Fatalf("range %d, n=%d odd=%v: vector loop %v, twin %v", r, n, odd, got, want)
						}
					}
				}
			}
		})
	}
}

// TestUpdateSumsOrder checks that the sums do not depend on how the elements
// are handed over: a parameter read in pieces of any length gives the sums
// of one pass, and so does a parameter cut into units of whole ranges, each
// summed from a fresh accumulator (the one-read scan's workers).
func TestUpdateSumsOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	m, v, th := updateInputs(rng, 1000, false)
	withSumRange(64, func() {
		var whole updateAcc
		updateSumsGo(m, v, th, &testConsts, &whole)
		whole.finish()
		for _, step := range []int{1, 3, 4, 5, 8, 64, 999} {
			var a updateAcc
			for i := 0; i < len(m); i += step {
				j := min(i+step, len(m))
				updateSums(m[i:j], v[i:j], th[i:j], &testConsts, &a)
			}
			a.finish()
			if !sameAcc(&a, &whole) {
				t.Fatalf("pieces of %d: %v, one pass %v", step, a, whole)
			}
		}
		for _, unit := range []int{64, 128, 192, 640} {
			parts := make([][2]float64, rangesOf(int64(len(m))))
			for lo := 0; lo < len(m); lo += unit {
				hi := min(lo+unit, len(m))
				a := updateAcc{parts: parts[lo/64 : lo/64]}
				updateSums(m[lo:hi], v[lo:hi], th[lo:hi], &testConsts, &a)
				a.finish()
			}
			gd, gt := sumParts(parts)
			wd, wt := sumParts(whole.parts)
			if !sameFloat(gd, wd) || !sameFloat(gt, wt) {
				t.Fatalf("units of %d: %v %v, one pass %v %v", unit, gd, gt, wd, wt)
			}
		}
	})
}

// TestUpdateSumsReference checks the twin against the order of the sums
// written out (lanes, ranges, range partials in order), with one rounding per
// operation.
func TestUpdateSumsReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	m, v, th := updateInputs(rng, 500, true)
	k := newUpdateConsts(3e-4, 1e-8, 0.9, 0.999, 2)
	const r = 48
	var sumD, sumT float64
	for lo := 0; lo < len(m); lo += r {
		var ld, lt [8]float64
		for i := lo; i < min(lo+r, len(m)); i++ {
			num := k.a * m[i]
			den := math.Sqrt(v[i]) + k.b
			d := num / den
			ld[(i-lo)%8] = ld[(i-lo)%8] + float64(d*d)
			lt[(i-lo)%8] = lt[(i-lo)%8] + float64(th[i]*th[i])
		}
		sumD = sumD + (((ld[0] + ld[1]) + (ld[2] + ld[3])) + ((ld[4] + ld[5]) + (ld[6] + ld[7])))
		sumT = sumT + (((lt[0] + lt[1]) + (lt[2] + lt[3])) + ((lt[4] + lt[5]) + (lt[6] + lt[7])))
	}
	withSumRange(r, func() {
		var a updateAcc
		updateSumsGo(m, v, th, &k, &a)
		a.finish()
		gd, gt := sumParts(a.parts)
		if !sameFloat(gd, sumD) || !sameFloat(gt, sumT) {
			t.Fatalf("twin %v %v, reference %v %v", gd, gt, sumD, sumT)
		}
	})
}

// exactRatio is the update ratio of Adam's formula as written,
// lr·(m/c1) / (√(v/c2) + ε), computed with 256-bit floats throughout.
func exactRatio(m, v, th []float64, lr, eps, b1, b2, step float64) float64 {
	const prec = 256
	nf := func(x float64) *big.Float { return new(big.Float).SetPrec(prec).SetFloat64(x) }
	c1 := nf(1 - math.Pow(b1, step)) // the constants as float64 computes them
	c2 := nf(1 - math.Pow(b2, step))
	sumD, sumT := nf(0), nf(0)
	for i := range m {
		num := nf(0).Quo(nf(m[i]), c1)
		num.Mul(num, nf(lr))
		den := nf(0).Quo(nf(v[i]), c2)
		den.Sqrt(den)
		den.Add(den, nf(eps))
		d := nf(0).Quo(num, den)
		sumD.Add(sumD, nf(0).Mul(d, d))
		sumT.Add(sumT, nf(0).Mul(nf(th[i]), nf(th[i])))
	}
	sumD.Sqrt(sumD)
	sumT.Sqrt(sumT)
	r, _ := sumD.Quo(sumD, sumT).Float64()
	return r
}

// showRatio prints a ratio or nil.
func showRatio(r *float64) string {
	if r == nil {
		return "nil"
	}
	return fmt.Sprint(*r)
}

// TestUpdateRatioAccuracy checks the predicted ratio (the vector loops, the
// range order) against Adam's formula in 256-bit floats, over Adam-like and
// adversarial moments (a huge dynamic range, second moments at the bottom of
// the range, m of alternating signs, v = 0 where ε alone divides): float64
// moments within 1e-13 relative, FP32 moments (the FP32 route, float64 where
// it overflows or underflows) within 1.8e-7, the bound docs/optimizer.md
// states.
func TestUpdateRatioAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	gens := map[string]func(i int) (m, v, th float64){
		"adam-like": func(int) (float64, float64, float64) {
			return rng.NormFloat64() * 1e-3, rng.Float64() * 1e-6, rng.NormFloat64() * 0.02
		},
		"dynamic range": func(int) (float64, float64, float64) {
			e := float64(rng.IntN(60) - 30)
			return rng.NormFloat64() * math.Pow(10, e), rng.Float64() * math.Pow(10, 2*e-rng.Float64()*10), rng.NormFloat64() * math.Pow(10, float64(rng.IntN(20)-10))
		},
		"tiny v": func(int) (float64, float64, float64) {
			return rng.NormFloat64(), rng.Float64() * 1e-300, 1
		},
		"alternating, v zero": func(i int) (float64, float64, float64) {
			return float64(1 - 2*(i&1)), 0, 1e-3
		},
		"FP32 underflow to zero": func(i int) (float64, float64, float64) {
			return math.Copysign(3e-44, rng.NormFloat64()), 1e30, 1
		},
		"FP32 overflow and underflow": func(i int) (float64, float64, float64) {
			switch i % 3 {
			case 0:
				return 3e38, 0, 1
			case 1:
				return 3e-44, 1, 1
			}
			return rng.NormFloat64(), rng.Float64(), 1
		},
	}
	for name, gen := range gens {
		for _, n := range []int{1, 7, 8, 1000, 5000} {
			m, v, th := make([]float64, n), make([]float64, n), make([]float64, n)
			for i := range n {
				m[i], v[i], th[i] = gen(i)
			}
			for _, step := range []float64{1, 10, 1e6} {
				k := newUpdateConsts(1e-4, 1e-8, 0.9, 0.999, step)
				want := exactRatio(m, v, th, 1e-4, 1e-8, 0.9, 0.999, step)
				withSumRange(64, func() {
					a := updateAcc{}
					updateSums(m, v, th, &k, &a)
					a.finish()
					got := ratioOf(a.parts)
					if got == nil || math.Abs(*got-want) > 1e-13*want {
						t.Errorf("%s, n=%d, step %g: ratio %s, exact %v", name, n, step, showRatio(got), want)
					}
				})
				// The same moments in FP32, the weight in BF16.
				mb, mw := f32Bytes(m)
				vb, vw := f32Bytes(v)
				tb, tw := weightBytes(formats.BF16, th)
				want = exactRatio(mw, vw, tw, 1e-4, 1e-8, 0.9, 0.999, step)
				withSumRange(64, func() {
					a := updateAcc{}
					updateSums32(mb, vb, tb, formats.BF16, n, &k, &a)
					a.finish()
					got := ratioOf(a.parts)
					if want == 0 || math.IsInf(want, 0) || math.IsNaN(want) {
						return // all of m or θ underflowed in FP32: no ratio to compare
					}
					if got == nil || math.Abs(*got-want) > 1.8e-7*want {
						t.Errorf("%s, FP32, n=%d, step %g: ratio %s, exact %v", name, n, step, showRatio(got), want)
					}
				})
			}
		}
	}
}

// f32Bytes rounds xs to FP32 and returns them as little-endian bytes and
// widened back to float64.
func f32Bytes(xs []float64) ([]byte, []float64) {
	b := make([]byte, 4*len(xs))
	w := make([]float64, len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(x)))
		w[i] = float64(float32(x))
	}
	return b, w
}

// TestUpdateSums32 checks the FP32 loops, with FP32, BF16 and F16 weights:
// each vector loop against its twin, and the twin against the float64 loop
// over the same values widened (negative counts included).
func TestUpdateSums32(t *testing.T) {
	wide := []bool{false}
	if update512OK {
		wide = append(wide, true) // both loops on this CPU
		defer func() { update512OK = true }()
	}
	for _, w := range wide {
		update512OK = w
		for _, r := range []int64{16, 40, 1 << 16} {
			withSumRange(r, func() { t.Run(fmt.Sprintf("avx512=%v,range=%d", w, r), testUpdateSums32) })
		}
	}
}

func testUpdateSums32(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, eps := range []float64{1e-8, 1e-45} { // 1e-45: b underflows in FP32, the float64 route throughout
		k := newUpdateConsts(1e-4, eps, 0.9, 0.999, 3)
		if k.fast != (eps == 1e-8) {
			t.Fatalf("ε %g: fast %v", eps, k.fast)
		}
		for _, wdt := range []formats.DType{formats.F32, formats.BF16, formats.F16} {
			for _, odd := range []bool{false, true} {
				for n := range 150 {
					m, v, th := updateInputs(rng, n, odd)
					if odd {
						overflowInputs(rng, m, v)
					}
					mb, mw := f32Bytes(m)
					vb, vw := f32Bytes(v)
					tb, tw := weightBytes(wdt, th)
					start := startedAcc(rng)
					got, twin, want := cloneAcc(start), cloneAcc(start), cloneAcc(start)
					updateSums32(mb, vb, tb, wdt, n, &k, &got)
					updateSums32Go(mb, vb, tb, wdt, n, &k, &twin)
					updateSumsGo(mw, vw, tw, &k, &want)
					if !sameAcc(&got, &twin) {
						t.Fatalf("ε %g, %v n=%d odd=%v: vector loop %v, twin %v", eps, wdt, n, odd, got, twin)
					}
					if !k.fast && !sameAcc(&twin, &want) {
						t.Fatalf("ε %g, %v n=%d odd=%v: FP32 twin %v, float64 loop %v", eps, wdt, n, odd, twin, want)
					}
					// The FP32 route: within its bound of the float64 loop.
					twin.finish()
					want.finish()
					gd, gt := sumParts(twin.parts)
					wd, wt := sumParts(want.parts)
					if !sameFloat(gt, wt) || math.IsNaN(gd) != math.IsNaN(wd) || (!math.IsNaN(wd) && math.Abs(gd-wd) > 4e-7*wd) {
						t.Fatalf("ε %g, %v n=%d odd=%v: FP32 twin Σd² %v Σθ² %v, float64 loop %v %v", eps, wdt, n, odd, gd, gt, wd, wt)
					}
					var neg uint64
					for _, x := range vw {
						if x < 0 {
							neg++
						}
					}
					if got := negativeF32(vb); got != neg || want.neg-start.neg != neg || twin.neg != want.neg {
						t.Fatalf("n=%d odd=%v: negativeF32 %d, the loops %d %d, want %d", n, odd, got, twin.neg-start.neg, want.neg-start.neg, neg)
					}
				}
			}
		}
	}
}

// overflowInputs puts, here and there, moments whose FP32 quotient
// m / (√v + b) is not a normal number though the float64 one is finite: an
// overflow (m near the FP32 maximum over a v of zero), a subnormal (m
// subnormal over v of one), an underflow to zero (m subnormal over a large
// v).
func overflowInputs(rng *rand.Rand, m, v []float64) {
	for i := range m {
		switch rng.IntN(9) {
		case 0:
			m[i], v[i] = math.Copysign(3e38, rng.NormFloat64()), 0
		case 1:
			m[i], v[i] = 3e-44, 1
		case 2:
			m[i], v[i] = 1e30, 1e-44
		case 3:
			m[i], v[i] = -3e-44, 1e30
		}
	}
}

// weightBytes stores xs in dt (FP32, BF16 or F16, little-endian) and returns
// the bytes and the stored values widened back to float64.
func weightBytes(dt formats.DType, xs []float64) ([]byte, []float64) {
	if dt == formats.F32 {
		return f32Bytes(xs)
	}
	b := make([]byte, 2*len(xs))
	for i, x := range xs {
		bits := math.Float32bits(float32(x))
		if dt == formats.BF16 {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(bits>>16))
		} else {
			binary.LittleEndian.PutUint16(b[2*i:], f16Bits(float32(x)))
		}
	}
	w := make([]float64, len(xs))
	inspect.DecodeFloat64(dt, b, w)
	return b, w
}

// f16Bits is a rough FP32 → F16 rounding (truncation; out of range to
// infinity, NaN kept): any pattern serves, the test decodes what it stored.
func f16Bits(x float32) uint16 {
	bits := math.Float32bits(x)
	sign := uint16(bits>>16) & 0x8000
	exp := int(bits>>23&0xFF) - 127 + 15
	switch {
	case bits&0x7FFFFFFF > 0x7F800000:
		return sign | 0x7E00
	case exp >= 31:
		return sign | 0x7C00
	case exp <= 0:
		return sign
	}
	return sign | uint16(exp)<<10 | uint16(bits>>13&0x3FF)
}

// TestNegativeF32Patterns checks negativeF32 at the edges of its range.
func TestNegativeF32Patterns(t *testing.T) {
	for _, c := range []struct {
		bits uint32
		neg  bool
	}{{0x00000000, false}, {0x80000000, false}, {0x80000001, true}, {0xBF800000, true}, {0xFF7FFFFF, true},
		{0xFF800000, true}, {0xFF800001, false}, {0xFFC00000, false}, {0xFFFFFFFF, false}, {0x7F800000, false}, {0x7FC00000, false}, {0x3F800000, false}} {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], c.bits)
		want := uint64(0)
		if c.neg {
			want = 1
		}
		if got := negativeF32(b[:]); got != want || (float64(math.Float32frombits(c.bits)) < 0) != c.neg {
			t.Errorf("%#08x: negativeF32 %d, want %d", c.bits, got, want)
		}
	}
}

// FuzzUpdateSums32 feeds arbitrary bytes as FP32 moments and an FP32 or
// BF16 weight: the vector loops give their twin's bits, on both AVX-512 and
// AVX2 where the CPU has both, from an accumulator part way into a range.
func FuzzUpdateSums32(f *testing.F) {
	f.Add([]byte{0, 0, 0x80, 0x7f, 0, 0, 0xc0, 0x7f, 1, 0, 0, 0, 0xff, 0xff, 0x7f, 0x7f}, uint8(3), false)
	f.Add(make([]byte, 200), uint8(0), true)
	f.Fuzz(func(t *testing.T, data []byte, at uint8, bf16 bool) {
		wdt, ws := formats.F32, 4
		if bf16 {
			wdt, ws = formats.BF16, 2
		}
		n := len(data) / (8 + ws)
		m, v, th := data[:4*n], data[4*n:8*n], data[8*n:8*n+ws*n]
		k := newUpdateConsts(1e-4, 1e-8, 0.9, 0.999, 3)
		wide := []bool{false}
		if update512OK {
			wide = append(wide, true)
			defer func() { update512OK = true }()
		}
		for _, w := range wide {
			update512OK = w
			withSumRange(48, func() {
				start := updateAcc{n: int64(at) % 48}
				got, twin := cloneAcc(start), cloneAcc(start)
				updateSums32(m, v, th, wdt, n, &k, &got)
				updateSums32Go(m, v, th, wdt, n, &k, &twin)
				if !sameAcc(&got, &twin) {
					t.Fatalf("avx512=%v: vector loop %v, twin %v", w, got, twin)
				}
			})
		}
	})
}

// BenchmarkUpdateSums32 runs the update's loop over a piece of Adam-like FP32
// moments with a BF16 weight (the usual case), in bytes of the three tensors
// per second: the vector loop and its twin.
func BenchmarkUpdateSums32(b *testing.B) {
	const n = 1 << 16
	rng := rand.New(rand.NewPCG(11, 12))
	m, v, th := updateInputs(rng, n, false)
	mb, _ := f32Bytes(m)
	vb, _ := f32Bytes(v)
	tb, _ := weightBytes(formats.BF16, th)
	k := newUpdateConsts(1e-4, 1e-8, 0.9, 0.999, 100)
	for _, c := range []struct {
		name string
		f    func(m, v, t []byte, wdt formats.DType, n int, k *updateConsts, a *updateAcc)
	}{{"vector", updateSums32}, {"twin", updateSums32Go}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(mb) + len(vb) + len(tb)))
			for range b.N {
				var a updateAcc
				c.f(mb, vb, tb, formats.BF16, n, &k, &a)
			}
		})
	}
}
