package inspect

import (
	"context"
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
// variance), and one whose halves sit at +1e4 and -1e4: mean, std and L2 must
// be within 1e-6 relative of the compensated float64 reference (they are far
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
		em, es, el := rel(s.Mean, mean), rel(s.Std(), std), rel(s.L2(), l2)
		t.Logf("%s: mean %.12g std %.12g l2 %.12g; relative errors %.1e %.1e %.1e", c.name, mean, std, l2, em, es, el)
		if em > 1e-6 || es > 1e-6 || el > 1e-6 {
			t.Fatalf("%s: relative errors mean %.2e std %.2e l2 %.2e exceed 1e-6", c.name, em, es, el)
		}
	}
}
