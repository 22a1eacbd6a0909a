//go:build amd64 && !noasm

package optim

import "golang.org/x/sys/cpu"

// updateAsmOK says the vector loops of the update (update_amd64.s, AVX) can
// run; the tests switch it off to compare them with their twins.
var updateAsmOK = cpu.X86.HasAVX && cpu.X86.HasAVX2 && cpu.X86.HasPOPCNT

// update512OK says the FP32 loops run in one AVX-512 register rather than
// two AVX2 ones (the same eight lanes); the tests switch it off to check both
// against their twin.
var update512OK = updateAsmOK && cpu.X86.HasAVX512F

// updateSumsAsm is updateSumsGo over the first n (a multiple of 8) elements
// at m, v and t.
//
//go:noescape
func updateSumsAsm(m, v, t *float64, n int, k *updateConsts, a *updateLanes)

// updateSums32F32Asm is updateSums32Go (k.fast) over the first n (a
// multiple of 8) elements: FP32 moments at m and v, an FP32 weight at t.
//
//go:noescape
func updateSums32F32Asm(m, v, t *byte, n int, k *updateConsts, a *updateLanes)

// updateSums32BF16Asm is updateSums32F32Asm with a BF16 weight.
//
//go:noescape
func updateSums32BF16Asm(m, v, t *byte, n int, k *updateConsts, a *updateLanes)

// updateSums32F32Asm512 is updateSums32F32Asm in AVX-512 registers: n is a
// multiple of 16.
//
//go:noescape
func updateSums32F32Asm512(m, v, t *byte, n int, k *updateConsts, a *updateLanes)

// updateSums32BF16Asm512 is updateSums32BF16Asm in AVX-512 registers: n is a
// multiple of 16.
//
//go:noescape
func updateSums32BF16Asm512(m, v, t *byte, n int, k *updateConsts, a *updateLanes)
