package inspect

import (
	"math/rand/v2"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// benchKernel measures one kernel on 8 MiB of weight-like data (one default
// chunk), starting at an odd address as unpadded headers leave it.
func benchKernel(b *testing.B, dt formats.DType, kernel func(formats.DType, []byte) Acc) {
	rng := rand.New(rand.NewPCG(1, 1))
	w := partBits(dt) / 8
	var raw []byte
	if dt.IsFloat() && w >= 2 {
		raw = weightsLike(rng, dt, DefaultChunkBytes/w, 0, 0.02)
	} else {
		raw = randomBits(rng, DefaultChunkBytes)
	}
	buf := make([]byte, len(raw)+1)
	copy(buf[1:], raw)
	raw = buf[1:]
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for range b.N {
		kernel(dt, raw)
	}
}

func BenchmarkKernel(b *testing.B) {
	for _, dt := range []formats.DType{formats.BF16, formats.F16, formats.F32, formats.F64, formats.F8_E4M3, formats.I32} {
		b.Run(string(dt), func(b *testing.B) { benchKernel(b, dt, Stats) })
	}
}

func BenchmarkReference(b *testing.B) {
	for _, dt := range []formats.DType{formats.BF16, formats.F32} {
		b.Run(string(dt), func(b *testing.B) { benchKernel(b, dt, ReferenceStats) })
	}
}

// BenchmarkKernelSmall measures the path for short BF16 tensors (layer norms,
// biases), where the histogram would not pay off.
func BenchmarkKernelSmall(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	raw := weightsLike(rng, formats.BF16, 3584, 1, 0.05)
	b.SetBytes(int64(len(raw)))
	for range b.N {
		Stats(formats.BF16, raw)
	}
}
