package ggml

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkDequantize reports, per type, input bytes per second (SetBytes)
// and dequantized values per second (values/s). The target is Q4_K at
// 1 G values/s per core or more.
func BenchmarkDequantize(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, ty := range []Type{Q4_0, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS, F16} {
		tr := table[ty]
		blocks := (64 << 10) / tr.BlockElems
		src := randomBlocks(r, ty, blocks)
		for i := 0; i < blocks; i++ { // finite scales: the common case
			for _, o := range tr.Scales {
				src[i*tr.BlockBytes+o+1] &= 0x3b
			}
		}
		dst := make([]float32, blocks*tr.BlockElems)
		b.Run(ty.String(), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				Dequantize(ty, dst, src)
			}
			b.ReportMetric(float64(len(dst))*float64(b.N)/b.Elapsed().Seconds(), "values/s")
		})
	}
}
