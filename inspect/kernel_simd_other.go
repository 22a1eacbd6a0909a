//go:build !amd64 || noasm

package inspect

// No assembly loops here (another architecture, or a build with -tags noasm):
// the histogram and block kernels serve every dtype, and the tests still check
// the vector kernels' Go twins against the reference.
var (
	simdBF16OK = false
	simdF16OK  = false
	simdF32OK  = false
)

var (
	bf16Asm, f16Asm simdAsm
	f32Asm          simdAsm32
)
