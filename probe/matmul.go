package probe

import (
	"runtime"
	"sync"
)

// matmulPlain is the reference product: y[t][o] = Σ_k x[t][k]·w[o][k] for the
// rows o of w, accumulated in float32 in order of k (what a GPU matrix product
// in half precision accumulates in, before its output is rounded). x is T×K,
// w is R×K, y is T×ystride with the R outputs written at column offset col.
func matmulPlain(x []float32, T, K int, w []float32, R int, y []float32, ystride, col int) {
	for t := 0; t < T; t++ {
		xr := x[t*K : t*K+K]
		for o := 0; o < R; o++ {
			wr := w[o*K : o*K+K]
			var s float32
			for k := range xr {
				s += xr[k] * wr[k]
			}
			y[t*ystride+col+o] = s
		}
	}
}

// matmulBlocked computes what matmulPlain computes, bit for bit (every output
// is still one float32 sum in order of k), in tiles of 2 tokens × 4 rows so
// that each loaded weight is used twice and each activation four times, with
// eight independent sums to keep the floating-point units busy (more would
// spill out of the sixteen vector registers).
func matmulBlocked(x []float32, T, K int, w []float32, R int, y []float32, ystride, col int) {
	o := 0
	for ; o+4 <= R; o += 4 {
		w0, w1, w2, w3 := w[o*K:o*K+K], w[(o+1)*K:(o+1)*K+K], w[(o+2)*K:(o+2)*K+K], w[(o+3)*K:(o+3)*K+K]
		t := 0
		for ; t+2 <= T; t += 2 {
			x0, x1 := x[t*K:t*K+K], x[(t+1)*K:(t+1)*K+K]
			w0, w1, w2, w3, x1 := w0[:len(x0)], w1[:len(x0)], w2[:len(x0)], w3[:len(x0)], x1[:len(x0)]
			var s00, s01, s02, s03, s10, s11, s12, s13 float32
			for k, a0 := range x0 {
				a1 := x1[k]
				b0, b1, b2, b3 := w0[k], w1[k], w2[k], w3[k]
				s00 += a0 * b0
				s01 += a0 * b1
				s02 += a0 * b2
				s03 += a0 * b3
				s10 += a1 * b0
				s11 += a1 * b1
				s12 += a1 * b2
				s13 += a1 * b3
			}
			r := y[t*ystride+col+o:]
			r[0], r[1], r[2], r[3] = s00, s01, s02, s03
			r = y[(t+1)*ystride+col+o:]
			r[0], r[1], r[2], r[3] = s10, s11, s12, s13
		}
		for ; t < T; t++ {
			xr := x[t*K : t*K+K]
			w0, w1, w2, w3 := w0[:len(xr)], w1[:len(xr)], w2[:len(xr)], w3[:len(xr)]
			var s0, s1, s2, s3 float32
			for k, a := range xr {
				s0 += a * w0[k]
				s1 += a * w1[k]
				s2 += a * w2[k]
				s3 += a * w3[k]
			}
			r := y[t*ystride+col+o:]
			r[0], r[1], r[2], r[3] = s0, s1, s2, s3
		}
	}
	if o < R {
		matmulPlain(x, T, K, w[o*K:], R-o, y, ystride, col+o)
	}
}

// matmulFast is the kernel linear uses: the AVX2 tile where the CPU has it
// (matmul_amd64.go), the blocked Go kernel otherwise.
var matmulFast = matmulBlocked

// parallel runs fn over [0,n) split into contiguous ranges, one per worker.
func parallel(n, workers int, fn func(lo, hi int)) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		lo, hi := i*n/workers, (i+1)*n/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
