//go:build !amd64 || noasm

package optim

// No vector loop here: updateSums runs its plain twin.
var updateAsmOK = false

func updateSumsAsm(m, v, t *float64, n int, k *updateConsts, a *updateAcc) {
	panic("optim: no vector loop on this architecture")
}

func updateSums32Asm(m, v *byte, t *float64, n int, k *updateConsts, a *updateAcc) {
	panic("optim: no vector loop on this architecture")
}
