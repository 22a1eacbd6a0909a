package probe

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMatmulBlockedEqualsPlain: the blocked kernel computes every output as
// the same float32 sum in the same order as the plain one, so they agree bit
// for bit, on every tile remainder, with NaN and Inf inputs too.
func TestMatmulBlockedEqualsPlain(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, T := range []int{1, 2, 3, 4, 5, 8, 9} {
		for _, R := range []int{1, 3, 4, 7, 16, 33} {
			for _, K := range []int{1, 5, 64, 67} {
				x, w := make([]float32, T*K), make([]float32, R*K)
				for i := range x {
					x[i] = float32(r.NormFloat64())
				}
				for i := range w {
					w[i] = float32(r.NormFloat64())
				}
				if T*R*K%7 == 0 {
					x[0], w[len(w)-1] = float32(math.NaN()), float32(math.Inf(1))
				}
				const stride, col = 50, 9
				a, b := make([]float32, T*stride), make([]float32, T*stride)
				matmulPlain(x, T, K, w, R, a, stride, col)
				matmulBlocked(x, T, K, w, R, b, stride, col)
				for i := range a {
					if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
						t.Fatalf("T=%d R=%d K=%d: output %d is %g, plain %g", T, R, K, i, b[i], a[i])
					}
				}
				// The fast kernel (AVX2 where available) sums in another order:
				// equal within float32 rounding, NaN where the plain one has NaN.
				c := make([]float32, T*stride)
				matmulFast(x, T, K, w, R, c, stride, col)
				for i := range a {
					if (a[i] != a[i]) != (c[i] != c[i]) {
						t.Fatalf("T=%d R=%d K=%d: fast output %d is %g, plain %g", T, R, K, i, c[i], a[i])
					}
				}
				for tt := 0; tt < T; tt++ {
					for o := 0; o < R; o++ {
						var mag float64
						for k := 0; k < K; k++ {
							mag += math.Abs(float64(x[tt*K+k]) * float64(w[o*K+k]))
						}
						if i := tt*stride + col + o; math.Abs(float64(c[i])-float64(a[i])) > 1e-6*float64(K)*mag {
							t.Fatalf("T=%d R=%d K=%d: fast (%d,%d) = %g, plain %g", T, R, K, tt, o, c[i], a[i])
						}
					}
				}
				// And both are the product: compare with float64.
				for tt := 0; tt < T; tt++ {
					for o := 0; o < R; o++ {
						var s, mag float64
						for k := 0; k < K; k++ {
							s += float64(x[tt*K+k]) * float64(w[o*K+k])
							mag += math.Abs(float64(x[tt*K+k]) * float64(w[o*K+k]))
						}
						got := float64(a[tt*stride+col+o])
						if !math.IsNaN(s) && math.Abs(got-s) > 1e-5*mag {
							t.Fatalf("T=%d R=%d K=%d: (%d,%d) = %g, want %g", T, R, K, tt, o, got, s)
						}
					}
				}
			}
		}
	}
}

// BenchmarkMatmul reports GFLOP/s of an 8-token product with a 7B-shaped
// projection block (3584 → 2048 rows), on all cores as linear runs it.
func BenchmarkMatmul(b *testing.B) {
	for _, kernel := range []struct {
		name string
		fn   func([]float32, int, int, []float32, int, []float32, int, int)
	}{{"fast", matmulFast}, {"blocked", matmulBlocked}, {"plain", matmulPlain}} {
		const T, K, R = 8, 3584, 2048
		x, w, y := make([]float32, T*K), make([]float32, R*K), make([]float32, T*R)
		for i := range x {
			x[i] = float32(i%13) * 0.01
		}
		for i := range w {
			w[i] = float32(i%7) * 0.01
		}
		b.Run(kernel.name, func(b *testing.B) {
			for b.Loop() {
				parallel(R, 0, func(lo, hi int) { kernel.fn(x, T, K, w[lo*K:hi*K], hi-lo, y, R, lo) })
			}
			flops := 2.0 * T * K * R * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
