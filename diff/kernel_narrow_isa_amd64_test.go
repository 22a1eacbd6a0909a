//go:build amd64 && !noasm

package diff

import (
	"testing"

	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// forEachNarrowISA runs f twice: with the AVX-512 narrow loops and range pass
// (kernel_narrow512_amd64.s) and with the AVX2 ones (narrow512OK off), so
// that each is tested against the Go twin on this CPU. Without AVX-512 the
// first run stops through testenv.Missing (a failure in CI, whose machine
// has it).
func forEachNarrowISA(t *testing.T, f func(t *testing.T)) {
	defer func(was bool) { narrow512OK = was }(narrow512OK)
	t.Run("avx512", func(t *testing.T) {
		if !narrow512CPU {
			testenv.Missing(t, "this CPU lacks AVX-512 (F, BW, VL, DQ), so the AVX-512 narrow loops cannot run",
				"run on an x86-64 CPU with AVX-512")
		}
		narrow512OK = true
		f(t)
	})
	t.Run("avx2", func(t *testing.T) {
		narrow512OK = false
		f(t)
	})
}

// withNarrowISAs calls f with the AVX-512 loops chosen, where this CPU has
// them, and with the AVX2 ones (for the fuzz target, which may not start
// subtests).
func withNarrowISAs(f func(isa string)) {
	defer func(was bool) { narrow512OK = was }(narrow512OK)
	if narrow512CPU {
		narrow512OK = true
		f("avx512")
	}
	narrow512OK = false
	f("avx2")
}

// BenchmarkNarrowISA measures the narrow loops and the range pass with the
// AVX-512 and the AVX2 registers, in one run (pair them: the machine's load
// moves), on a piece of benchPair (pieceBytes per side, in the L2 cache as
// the engine's pieces are), a sub-block at a time as the engine calls them:
// the checking loop (with the float64 loop behind it, as
// fastKernel), the unchecked one (inRangeKernel, the series' loop) and the
// range pass over A.
func BenchmarkNarrowISA(b *testing.B) {
	defer func(was bool) { narrow512OK = was }(narrow512OK)
	for _, dt := range narrowDTypes {
		ra, rb := benchPair(dt)
		ra, rb = ra[:pieceBytes], rb[:pieceBytes]
		for _, isa := range []string{"avx512", "avx2"} {
			if isa == "avx512" && !narrow512CPU {
				continue
			}
			run := func(name string, bytes int, f func()) {
				b.Run(string(dt)+"/"+isa+"/"+name, func(b *testing.B) {
					narrow512OK = isa == "avx512"
					b.SetBytes(int64(bytes))
					for b.Loop() {
						f()
					}
				})
			}
			per := func(k func(a, b []byte, s *Stats)) func() {
				return func() {
					var s Stats
					for o := 0; o < len(ra); o += 2 * subBlock {
						e := min(o+2*subBlock, len(ra))
						k(ra[o:e], rb[o:e], &s)
					}
				}
			}
			run("checking", len(ra)+len(rb), func() { per(fastKernel(dt, dt))() })
			if inRangeKernel(dt) != nil {
				run("unchecked", len(ra)+len(rb), func() { per(inRangeKernel(dt))() })
				run("range", len(ra), func() { narrowRangeOf(dt)(ra) })
			}
		}
	}
}
