//go:build amd64 && !noasm

package inspect

import "golang.org/x/sys/cpu"

// The vector kernels run on x86-64 CPUs with AVX2 and FMA (and F16C for F16);
// the loops are in kernel_simd_amd64.s. Tests switch these off to exercise
// the fallback kernels; building with -tags noasm leaves the assembly out
// altogether (kernel_simd_other.go), as on other architectures.
var (
	simdBF16OK = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	simdF16OK  = simdBF16OK && cpu.X86.HasF16C
	simdF32OK  = simdBF16OK
)

// simd512OK says the narrow and count loops run their AVX-512 versions
// (kernel_simd512_amd64.s: 64-byte vectors, mask registers), which give the
// AVX2 loops' results to the bit; the other loops stay AVX2. Tests switch it
// off to run the AVX2 versions on the same CPU.
var simd512OK = simdBF16OK && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW

// simd512Built says the AVX-512 loops are linked in.
const simd512Built = true

var (
	bf16Asm = simdAsm{narrow: simdNarrowBF16, narrowCount: simdNarrowCountBF16, count: simdCount16, lanes: simdLanesBF16, masked: simdLanesMaskedBF16, dev: simdDevBF16}
	f16Asm  = simdAsm{narrow: simdNarrowF16, narrowCount: simdNarrowCountF16, count: simdCount16, lanes: simdLanesF16, masked: simdLanesMaskedF16, dev: simdDevF16}
	f32Asm  = simdAsm32{narrow: simdNarrowF32, narrowCount: simdNarrowCountF32, count: simdCount32, lanes: simdLanesF32, masked: simdLanesMaskedF32, dev: simdDevF32}

	bf16Asm512 = simdAsm{narrow: simdNarrowBF16AVX512, narrowCount: simdNarrowCountBF16AVX512, count: simdCount16AVX512, lanes: simdLanesBF16, masked: simdLanesMaskedBF16, dev: simdDevBF16}
	f16Asm512  = simdAsm{narrow: simdNarrowF16AVX512, narrowCount: simdNarrowCountF16AVX512, count: simdCount16AVX512, lanes: simdLanesF16, masked: simdLanesMaskedF16, dev: simdDevF16}
	f32Asm512  = simdAsm32{narrow: simdNarrowF32AVX512, narrowCount: simdNarrowCountF32AVX512, count: simdCount32AVX512, lanes: simdLanesF32, masked: simdLanesMaskedF32, dev: simdDevF32}
)

// simdNarrowBF16 folds pairs×32 BF16 elements at p into l with float32
// sums (see kernel_simd.go), keeping no NaN or infinity out.
//
//go:noescape
func simdNarrowBF16(p *byte, pairs int, l *simdLanes, c *simdConsts)

// simdNarrowF16 is simdNarrowBF16 for F16.
//
//go:noescape
func simdNarrowF16(p *byte, pairs int, l *simdLanes, c *simdConsts)

// simdNarrowCountBF16 is simdNarrowBF16 counting the zeros and the
// magnitudes of at least the smallest normal instead of keeping the smallest
// magnitude.
//
//go:noescape
func simdNarrowCountBF16(p *byte, pairs int, l *simdLanes, c *simdConsts)

// simdNarrowCountF16 is simdNarrowCountBF16 for F16.
//
//go:noescape
func simdNarrowCountF16(p *byte, pairs int, l *simdLanes, c *simdConsts)

// simdCount16 counts the zeros and the magnitudes of at least the smallest
// normal of groups×16 BF16 or F16 elements at p into l.
//
//go:noescape
func simdCount16(p *byte, groups int, l *simdLanes, c *simdConsts)

// simdLanesBF16 folds groups×16 BF16 elements at p into l, assuming all are finite.
//
//go:noescape
func simdLanesBF16(p *byte, groups int, l *simdLanes, c *simdConsts)

// simdLanesMaskedBF16 folds groups×16 BF16 elements at p into l, counting NaN and infinities.
//
//go:noescape
func simdLanesMaskedBF16(p *byte, groups int, l *simdLanes, c *simdConsts)

// simdDevBF16 adds the deviations from pivot of groups×16 finite BF16 elements at p to l's sums.
//
//go:noescape
func simdDevBF16(p *byte, groups int, pivot float64, l *simdLanes, c *simdConsts)

// simdLanesF16 is simdLanesBF16 for F16.
//
//go:noescape
func simdLanesF16(p *byte, groups int, l *simdLanes, c *simdConsts)

// simdLanesMaskedF16 is simdLanesMaskedBF16 for F16.
//
//go:noescape
func simdLanesMaskedF16(p *byte, groups int, l *simdLanes, c *simdConsts)

// simdDevF16 is simdDevBF16 for F16.
//
//go:noescape
func simdDevF16(p *byte, groups int, pivot float64, l *simdLanes, c *simdConsts)

// simdNarrowF32 folds pairs×32 F32 elements at p into l with float32 sums
// (see kernel_simd.go), keeping no NaN or infinity out.
//
//go:noescape
func simdNarrowF32(p *byte, pairs int, l *simdLanes32, c *simdConsts32)

// simdNarrowCountF32 is simdNarrowF32 counting the zeros and the
// magnitudes of at least the smallest normal as well.
//
//go:noescape
func simdNarrowCountF32(p *byte, pairs int, l *simdLanes32, c *simdConsts32)

// simdCount32 counts the zeros and the magnitudes of at least the smallest
// normal of groups×16 F32 elements at p into l.
//
//go:noescape
func simdCount32(p *byte, groups int, l *simdLanes32, c *simdConsts32)

// simdLanesF32 folds groups×16 F32 elements at p into l, assuming all are finite.
//
//go:noescape
func simdLanesF32(p *byte, groups int, l *simdLanes32, c *simdConsts32)

// simdLanesMaskedF32 folds groups×16 F32 elements at p into l, counting NaN and infinities.
//
//go:noescape
func simdLanesMaskedF32(p *byte, groups int, l *simdLanes32, c *simdConsts32)

// simdDevF32 adds the deviations from pivot of groups×16 finite F32 elements at p to l's sums.
//
//go:noescape
func simdDevF32(p *byte, groups int, pivot float64, l *simdLanes32, c *simdConsts32)

// simdNarrowBF16AVX512 is simdNarrowBF16 on AVX-512, with the same result.
//
//go:noescape
func simdNarrowBF16AVX512(p *byte, pairs int, l *simdLanes, c *simdConsts)

// simdNarrowCountBF16AVX512 is simdNarrowCountBF16 on AVX-512, with the same result.
//
//go:noescape
func simdNarrowCountBF16AVX512(p *byte, pairs int, l *simdLanes, c *simdConsts)

// simdNarrowF16AVX512 is simdNarrowF16 on AVX-512, with the same result.
//
//go:noescape
func simdNarrowF16AVX512(p *byte, pairs int, l *simdLanes, c *simdConsts)

// simdNarrowCountF16AVX512 is simdNarrowCountF16 on AVX-512, with the same result.
//
//go:noescape
func simdNarrowCountF16AVX512(p *byte, pairs int, l *simdLanes, c *simdConsts)

// simdCount16AVX512 is simdCount16 on AVX-512, with the same result.
//
//go:noescape
func simdCount16AVX512(p *byte, groups int, l *simdLanes, c *simdConsts)

// simdNarrowF32AVX512 is simdNarrowF32 on AVX-512, with the same result.
//
//go:noescape
func simdNarrowF32AVX512(p *byte, pairs int, l *simdLanes32, c *simdConsts32)

// simdNarrowCountF32AVX512 is simdNarrowCountF32 on AVX-512, with the same result.
//
//go:noescape
func simdNarrowCountF32AVX512(p *byte, pairs int, l *simdLanes32, c *simdConsts32)

// simdCount32AVX512 is simdCount32 on AVX-512, with the same result.
//
//go:noescape
func simdCount32AVX512(p *byte, groups int, l *simdLanes32, c *simdConsts32)
