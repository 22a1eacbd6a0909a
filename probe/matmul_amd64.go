//go:build amd64

package probe

import "golang.org/x/sys/cpu"

// fmaTile2x4 computes out[t*4+r] = Σ_{k<8·k8} x_t[k]·w_r[k] for the token rows
// x0, x1 and the weight rows w0..w3, in eight float32 lanes (lane = k mod 8)
// with fused multiply-adds, the lanes then added pairwise.
//
//go:noescape
func fmaTile2x4(x0, x1, w0, w1, w2, w3 *float32, k8 int, out *[8]float32)

func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		matmulFast = matmulAVX2
	}
}

// matmulAVX2 is matmulPlain's product with the AVX2 tile. Every output goes
// through the same tile arithmetic (a last odd token or row is computed by
// repeating the previous one), so a value does not depend on how the rows were
// split between workers or blocks.
func matmulAVX2(x []float32, T, K int, w []float32, R int, y []float32, ystride, col int) {
	k8 := K / 8
	var out [8]float32
	for o := 0; o < R; o += 4 {
		var rows [4]int
		for i := range rows {
			rows[i] = min(o+i, R-1)
		}
		for t := 0; t < T; t += 2 {
			t1 := min(t+1, T-1)
			fmaTile2x4(&x[t*K], &x[t1*K], &w[rows[0]*K], &w[rows[1]*K], &w[rows[2]*K], &w[rows[3]*K], k8, &out)
			for i, tt := range [2]int{t, t1} {
				xr := x[tt*K : tt*K+K]
				for j, r := range rows {
					s := out[i*4+j]
					wr := w[r*K : r*K+K]
					for k := k8 * 8; k < K; k++ {
						s += xr[k] * wr[k]
					}
					if (i == 0 || t1 != t) && (j == 0 || r != rows[j-1]) {
						y[tt*ystride+col+r] = s
					}
				}
			}
		}
	}
}
