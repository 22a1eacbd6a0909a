//go:build amd64 && !noasm

package inspect

import (
	"testing"

	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// TestSIMD512Dispatch: on a CPU with AVX-512 (F and BW) the narrow and count
// loops of BF16, F16 and F32 run their AVX-512 versions, and the AVX2 ones
// when simd512OK is switched off (the differential tests run both sets
// against the twins: see eachLoopSet). On a CPU without AVX-512 those tests
// could hold only the AVX2 loops to the twins: this fails in CI and skips
// elsewhere.
func TestSIMD512Dispatch(t *testing.T) {
	if !simdBF16OK {
		testenv.Missing(t, "this CPU lacks AVX2 or FMA, so no vector loop runs", "run on an x86-64 CPU with AVX2 and AVX-512")
	}
	if !simd512CPU {
		testenv.Missing(t, "this CPU lacks AVX-512 (F and BW), so the AVX-512 narrow and count loops cannot run", "run on an x86-64 CPU with AVX-512")
	}
	save := simd512OK
	defer func() { simd512OK = save }()
	for _, on := range []bool{true, false} {
		simd512OK = on
		want16, want32 := []*simdAsm{&bf16Asm, &f16Asm}, &f32Asm
		if on {
			want16, want32 = []*simdAsm{&bf16Asm512, &f16Asm512}, &f32Asm512
		}
		for i, f := range []*simdFormat{bf16SIMD, f16SIMD} {
			if f.loops() != want16[i] {
				t.Errorf("%s with simd512OK %v: the other set of loops runs", f.dt, on)
			}
		}
		if f32Loops() != want32 {
			t.Errorf("F32 with simd512OK %v: the other set of loops runs", on)
		}
	}
}
