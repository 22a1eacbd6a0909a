package inspect

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// exactStats is the float64 reference the precision test measures against:
// compensated (Neumaier) sums, the mean first, then the squared deviations
// from it; far more accurate than any blocked scheme needs to be.
func exactStats(vals func(yield func(float64))) (mean, std, l2 float64) {
	var n float64
	var s, c float64
	add := func(s, c *float64, x float64) {
		t := *s + x
		if math.Abs(*s) >= math.Abs(x) {
			*c += (*s - t) + x
		} else {
			*c += (x - t) + *s
		}
		*s = t
	}
	vals(func(x float64) { n++; add(&s, &c, x) })
	mean = (s + c) / n
	var m2, mc, q, qc float64
	vals(func(x float64) {
		d := x - mean
		add(&m2, &mc, d*d)
		add(&q, &qc, x*x)
	})
	return mean, math.Sqrt((m2 + mc) / n), math.Sqrt(q + qc)
}

// TestPrecisionAdversarial scans 10M-element tensors whose mean is large
// against their spread (where a one-pass or float32 sum would lose the
// variance), one whose halves sit at +1e4 and -1e4, and a zero-mean BF16
// one (the narrow loops' float32 sums): std and L2 must be within 1e-6
// relative of the compensated float64 reference, the mean within 1e-6
// relative or of the standard deviation when that is larger (they are far
// closer; the test logs how close).
func TestPrecisionAdversarial(t *testing.T) {
	if testing.Short() {
		t.Skip("10M-element tensors")
	}
	const n = 10_000_000
	rng := rand.New(rand.NewPCG(31, 32))
	mk := func(dt formats.DType, gen func(i int) float64) testTensor {
		w := dt.Size()
		b := make([]byte, n*w)
		for i := 0; i < n; i++ {
			encode(dt, b[i*w:], gen(i))
		}
		return testTensor{"t." + string(dt), dt, []uint64{n}, b}
	}
	cases := []testTensor{
		mk(formats.F32, func(int) float64 { return 1000 + 0.01*rng.NormFloat64() }),
		mk(formats.BF16, func(int) float64 { return 1 + 0.01*rng.NormFloat64() }),
		mk(formats.F16, func(int) float64 { return 300 + 0.5*rng.NormFloat64() }),
		mk(formats.BF16, func(int) float64 { return 0.02 * rng.NormFloat64() }),
	}
	split := mk(formats.F32, func(i int) float64 {
		if i < n/2 {
			return 1e4 + rng.NormFloat64()
		}
		return -1e4 + rng.NormFloat64()
	})
	split.name = "t.split"
	cases = append(cases, split)
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), "p.safetensors")
		writeST(t, path, []testTensor{c}, false)
		r, err := ScanPath(context.Background(), path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s := r.Tensors[0]
		mean, std, l2 := exactStats(func(yield func(float64)) {
			w := c.dt.Size()
			for i := 0; i < n; i++ {
				yield(formats.Element(c.dt, c.data[i*w:], 0))
			}
		})
		rel := func(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }
		em, es, el := math.Abs(s.Mean-mean)/math.Max(math.Abs(mean), std), rel(s.Std(), std), rel(s.L2(), l2)
		t.Logf("%s: mean %.12g std %.12g l2 %.12g; relative errors %.1e %.1e %.1e", c.name, mean, std, l2, em, es, el)
		if em > 1e-6 || es > 1e-6 || el > 1e-6 {
			t.Fatalf("%s: relative errors mean %.2e std %.2e l2 %.2e exceed 1e-6", c.name, em, es, el)
		}
	}
}

// TestNarrowPrecision holds the narrow loops (BF16, F16 and F32, float32
// sums; see kernel_simd.go) to the bounds proven there, against the compensated
// float64 reference, on adversarial data: a 68M-element zero-mean tensor
// (the size of a 7B model's MLP matrix), a mean just inside the share where
// sumsq - sum·mean is trusted (the worst case of the proof), halves of a
// block cancelling at ±1e4, magnitudes spread over 40 binades, a large
// offset, values beyond the narrow range (BF16 and F32 above 2⁶⁰ or all
// below 2⁻⁴⁰), F32 values of ±x whose squares all round the same way, and
// NaN payloads, infinities, ±0 and subnormals among them. Stats (the
// assembly where the CPU has it) and the Go twin alone are both held to:
// L2 within narrowSumSqRel/2, the standard deviation within narrowM2Rel/2
// relative, the mean within narrowMeanStd of the standard deviation (F32:
// the narrow32 bounds).
func TestNarrowPrecision(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	type tcase struct {
		name string
		dt   formats.DType
		n    int
		gen  func(i int) float64
	}
	normal := func(mean, std float64) func(int) float64 {
		return func(int) float64 { return mean + std*rng.NormFloat64() }
	}
	cases := []tcase{
		{"zero mean", formats.F16, 1 << 20, normal(0, 0.02)},
		{"mean at the guard", formats.BF16, 4 << 20, normal(0.37*0.02, 0.02)},
		{"mean at the guard", formats.F16, 4 << 20, normal(0.37, 1)},
		{"cancelling halves", formats.BF16, 2 << 20, func(i int) float64 {
			return float64(1-2*(i&1))*1e4 + rng.NormFloat64()
		}},
		{"cancelling halves", formats.F16, 2 << 20, func(i int) float64 {
			return float64(1-2*(i&1))*1e4 + rng.NormFloat64()
		}},
		{"40 binades", formats.BF16, 2 << 20, func(int) float64 {
			return rng.NormFloat64() * math.Ldexp(1, rng.IntN(40)-30)
		}},
		{"large offset", formats.BF16, 2 << 20, normal(3, 0.01)},
		{"beyond 2^60", formats.BF16, 1 << 20, normal(0, 1e20)},
		{"below 2^-40", formats.BF16, 1 << 20, normal(0, 1e-15)},
		{"specials", formats.BF16, 1 << 20, normal(0.001, 0.02)},
		{"specials", formats.F16, 1 << 20, normal(0.001, 0.02)},
		{"zero mean", formats.F32, 1 << 20, normal(0, 0.02)},
		{"mean at the guard", formats.F32, 4 << 20, normal(0.37*0.02, 0.02)},
		{"cancelling halves", formats.F32, 2 << 20, func(i int) float64 {
			return float64(1-2*(i&1))*1e4 + rng.NormFloat64()
		}},
		{"40 binades", formats.F32, 2 << 20, func(int) float64 {
			return rng.NormFloat64() * math.Ldexp(1, rng.IntN(40)-30)
		}},
		// x² = 1 + 2⁻¹¹ + 2⁻²² + 2⁻²⁴ + 2⁻³⁵ + 2⁻⁴⁸: every square rounds down
		{"squares rounding one way", formats.F32, 2 << 20, func(i int) float64 {
			return float64(1-2*(i&1)) * (1 + 0x1p-12 + 0x1p-24)
		}},
		{"large offset", formats.F32, 2 << 20, normal(3, 0.01)},
		{"beyond 2^60", formats.F32, 1 << 20, normal(0, 1e20)},
		{"below 2^-40", formats.F32, 1 << 20, normal(0, 1e-15)},
		{"specials", formats.F32, 1 << 20, normal(0.001, 0.02)},
	}
	if !testing.Short() {
		cases = append(cases, tcase{"zero mean, 68M", formats.BF16, 3584 * 18944, normal(0, 0.02)},
			tcase{"zero mean, 68M", formats.F32, 3584 * 18944, normal(0, 0.02)})
	} else {
		cases = append(cases, tcase{"zero mean", formats.BF16, 4 << 20, normal(0, 0.02)})
	}
	for _, c := range cases {
		w := c.dt.Size()
		raw := make([]byte, w*c.n)
		for i := range c.n {
			encode(c.dt, raw[w*i:], c.gen(i))
		}
		if c.name == "specials" && c.dt == formats.F32 {
			sp := []uint32{f32PInf, f32NInf, f32PInf | 1, f32PInf | 0x55555, f32NInf | 0x7FFFFF, 0x80000000, 0, 1, 0x80000000 | f32Tiny}
			for i := rng.IntN(1000); i < c.n; i += 1 + rng.IntN(2000) {
				binary.LittleEndian.PutUint32(raw[4*i:], sp[rng.IntN(len(sp))])
			}
		} else if c.name == "specials" {
			f := bf16SIMD
			if c.dt == formats.F16 {
				f = f16SIMD
			}
			// NaN with several payloads, infinities, ±0, subnormals
			sp := []uint16{f.pinf, f.ninf, f.pinf | 1, f.pinf | 0x55, f.ninf | 0x7F, 0x8000, 0, 1, 0x8000 | f.tiny}
			for i := rng.IntN(1000); i < c.n; i += 1 + rng.IntN(2000) {
				binary.LittleEndian.PutUint16(raw[2*i:], sp[rng.IntN(len(sp))])
			}
		}
		mean, std, l2 := exactStats(func(yield func(float64)) {
			for i := range c.n {
				if v := formats.Element(c.dt, raw, i); !math.IsNaN(v) && !math.IsInf(v, 0) {
					yield(v)
				}
			}
		})
		var twin vecKernel = simd32{false, nil}
		sumSqRel, m2Rel, meanStd := narrow32SumSqRel, narrow32M2Rel, narrow32MeanStd
		switch c.dt {
		case formats.BF16:
			twin, sumSqRel, m2Rel, meanStd = simd16{bf16SIMD, false, nil}, narrowSumSqRel, narrowM2Rel, narrowMeanStd
		case formats.F16:
			twin, sumSqRel, m2Rel, meanStd = simd16{f16SIMD, false, nil}, narrowSumSqRel, narrowM2Rel, narrowMeanStd
		}
		kernels := map[string]Acc{"Stats": Stats(c.dt, raw)}
		if c.n < 16<<20 { // the 68M case: Stats alone (the twin agrees with it to the bit elsewhere)
			kernels["Go twin"] = vecStats(twin, raw)
		}
		for name, got := range kernels {
			em, es, el := math.Abs(got.Mean-mean)/std, math.Abs(got.Std()-std)/std, math.Abs(got.L2()-l2)/l2
			t.Logf("%s %s (%d), %s: mean %.6g std %.6g; errors: mean %.1e of std, std %.1e, l2 %.1e", c.dt, c.name, c.n, name, mean, std, em, es, el)
			if em > meanStd || es > m2Rel/2 || el > sumSqRel/2 {
				t.Errorf("%s %s, %s: errors mean %.2e of std (bound %.1e), std %.2e (%.1e), l2 %.2e (%.1e)",
					c.dt, c.name, name, em, meanStd, es, m2Rel/2, el, sumSqRel/2)
			}
		}
	}
}
