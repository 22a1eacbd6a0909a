//go:build amd64 && !noasm

package optim

import "golang.org/x/sys/cpu"

// updateAsmOK says the vector loop of the update (update_amd64.s, AVX) can
// run; the tests switch it off to compare it with its twin.
var updateAsmOK = cpu.X86.HasAVX

// updateSumsAsm is updateSumsGo over the first n (a multiple of 4) elements
// at m, v and t.
//
//go:noescape
func updateSumsAsm(m, v, t *float64, n int, k *updateConsts, a *updateAcc)

// updateSums32Asm is updateSums32Go over the first n (a multiple of 4)
// elements: FP32 moments at m and v, the weight at t.
//
//go:noescape
func updateSums32Asm(m, v *byte, t *float64, n int, k *updateConsts, a *updateAcc)
