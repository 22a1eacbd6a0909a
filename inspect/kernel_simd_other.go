//go:build !amd64

package inspect

// No assembly loops here: the histogram and block kernels serve every dtype.
var (
	simdBF16OK = false
	simdF16OK  = false
	simdF32OK  = false
)

var (
	bf16Asm, f16Asm simdAsm
	f32Asm          simdAsm32
)
