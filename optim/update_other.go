//go:build !amd64 || noasm

package optim

// No vector loops here: updateSums and updateSums32 run their plain twins.
var updateAsmOK, update512OK = false, false

func updateSumsAsm(m, v, t *float64, n int, k *updateConsts, a *updateLanes) {
	panic("optim: no vector loop on this architecture")
}

func updateSums32F32Asm(m, v, t *byte, n int, k *updateConsts, a *updateLanes) {
	panic("optim: no vector loop on this architecture")
}

func updateSums32BF16Asm(m, v, t *byte, n int, k *updateConsts, a *updateLanes) {
	panic("optim: no vector loop on this architecture")
}

func updateSums32F32Asm512(m, v, t *byte, n int, k *updateConsts, a *updateLanes) {
	panic("optim: no vector loop on this architecture")
}

func updateSums32BF16Asm512(m, v, t *byte, n int, k *updateConsts, a *updateLanes) {
	panic("optim: no vector loop on this architecture")
}
