//go:build !amd64 || noasm

package inspect

// No assembly loops here (another architecture, or a build with -tags noasm):
// the histogram and block kernels serve every dtype, and the tests still check
// the vector kernels' Go twins against the reference.
var (
	simdBF16OK = false
	simdF16OK  = false
	simdF32OK  = false
	simd512OK  = false
)

// simd512Built says the AVX-512 loops are linked in.
const simd512Built = false

var (
	bf16Asm, f16Asm, bf16Asm512, f16Asm512 simdAsm
	f32Asm, f32Asm512                      simdAsm32
)
