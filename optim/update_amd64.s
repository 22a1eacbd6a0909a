//go:build amd64 && !noasm

// The vector loops of the predicted update (see update.go): eight elements
// per step. d = a·m / (√v + b), d² and θ² are computed lane by lane (each
// operation correctly rounded, as in the scalar twin) and added to the eight
// lane sums of Σd² and Σθ² (updateLanes: d[8], t[8], neg), element j of the
// step to lane j: in one AVX-512 register, or two AVX2 ones (lanes 0-3 and
// 4-7). The lanes of v below zero are counted (ordered comparison: NaN and -0
// are not). FP32 and BF16 inputs are widened to float64 as they are loaded
// (exactly).

#include "textflag.h"

// func updateSumsAsm(m, v, t *float64, n int, k *updateConsts, a *updateLanes)
TEXT ·updateSumsAsm(SB), NOSPLIT, $0-48
	MOVQ m+0(FP), SI
	MOVQ v+8(FP), DI
	MOVQ t+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), AX
	MOVQ a+40(FP), BX
	VBROADCASTSD 0(AX), Y8   // a
	VBROADCASTSD 8(AX), Y9   // b
	VXORPD Y15, Y15, Y15      // zero
	VMOVUPD 0(BX), Y10        // Σd² lanes 0-3
	VMOVUPD 32(BX), Y11       // Σd² lanes 4-7
	VMOVUPD 64(BX), Y12       // Σθ² lanes 0-3
	VMOVUPD 96(BX), Y13       // Σθ² lanes 4-7
	MOVQ 128(BX), R9          // negative count
	SHRQ $3, CX
	JZ updateSumsAsm_done

updateSumsAsm_loop:
	VMOVUPD (SI), Y0
	VMOVUPD 32(SI), Y1
	VMULPD Y8, Y0, Y0  // a·m
	VMULPD Y8, Y1, Y1
	VMOVUPD (DI), Y2
	VMOVUPD 32(DI), Y3
	VCMPPD $1, Y15, Y2, Y4 // v < 0
	VMOVMSKPD Y4, R8
	POPCNTQ R8, R8
	ADDQ R8, R9
	VCMPPD $1, Y15, Y3, Y4
	VMOVMSKPD Y4, R8
	POPCNTQ R8, R8
	ADDQ R8, R9
	VSQRTPD Y2, Y2
	VSQRTPD Y3, Y3
	VADDPD Y9, Y2, Y2  // √v + b
	VADDPD Y9, Y3, Y3
	VDIVPD Y2, Y0, Y0  // d
	VDIVPD Y3, Y1, Y1
	VMULPD Y0, Y0, Y0  // d²
	VMULPD Y1, Y1, Y1
	VADDPD Y0, Y10, Y10
	VADDPD Y1, Y11, Y11
	VMOVUPD (DX), Y2
	VMOVUPD 32(DX), Y3
	VMULPD Y2, Y2, Y2  // θ²
	VMULPD Y3, Y3, Y3
	VADDPD Y2, Y12, Y12
	VADDPD Y3, Y13, Y13

	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, DX
	DECQ CX
	JNZ updateSumsAsm_loop

updateSumsAsm_done:
	VMOVUPD Y10, 0(BX)
	VMOVUPD Y11, 32(BX)
	VMOVUPD Y12, 64(BX)
	VMOVUPD Y13, 96(BX)
	MOVQ R9, 128(BX)
	VZEROUPPER
	RET

// func updateSums32F32Asm(m, v, t *byte, n int, k *updateConsts, a *updateLanes)
TEXT ·updateSums32F32Asm(SB), NOSPLIT, $0-48
	MOVQ m+0(FP), SI
	MOVQ v+8(FP), DI
	MOVQ t+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), AX
	MOVQ a+40(FP), BX
	VBROADCASTSD 0(AX), Y8   // a
	VBROADCASTSD 8(AX), Y9   // b
	VXORPD Y15, Y15, Y15      // zero
	VMOVUPD 0(BX), Y10        // Σd² lanes 0-3
	VMOVUPD 32(BX), Y11       // Σd² lanes 4-7
	VMOVUPD 64(BX), Y12       // Σθ² lanes 0-3
	VMOVUPD 96(BX), Y13       // Σθ² lanes 4-7
	MOVQ 128(BX), R9          // negative count
	SHRQ $3, CX
	JZ updateSums32F32Asm_done

updateSums32F32Asm_loop:
	VCVTPS2PD (SI), Y0
	VCVTPS2PD 16(SI), Y1
	VMULPD Y8, Y0, Y0  // a·m
	VMULPD Y8, Y1, Y1
	VCVTPS2PD (DI), Y2
	VCVTPS2PD 16(DI), Y3
	VCMPPD $1, Y15, Y2, Y4 // v < 0
	VMOVMSKPD Y4, R8
	POPCNTQ R8, R8
	ADDQ R8, R9
	VCMPPD $1, Y15, Y3, Y4
	VMOVMSKPD Y4, R8
	POPCNTQ R8, R8
	ADDQ R8, R9
	VSQRTPD Y2, Y2
	VSQRTPD Y3, Y3
	VADDPD Y9, Y2, Y2  // √v + b
	VADDPD Y9, Y3, Y3
	VDIVPD Y2, Y0, Y0  // d
	VDIVPD Y3, Y1, Y1
	VMULPD Y0, Y0, Y0  // d²
	VMULPD Y1, Y1, Y1
	VADDPD Y0, Y10, Y10
	VADDPD Y1, Y11, Y11
	VCVTPS2PD (DX), Y2
	VCVTPS2PD 16(DX), Y3
	VMULPD Y2, Y2, Y2  // θ²
	VMULPD Y3, Y3, Y3
	VADDPD Y2, Y12, Y12
	VADDPD Y3, Y13, Y13

	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	DECQ CX
	JNZ updateSums32F32Asm_loop

updateSums32F32Asm_done:
	VMOVUPD Y10, 0(BX)
	VMOVUPD Y11, 32(BX)
	VMOVUPD Y12, 64(BX)
	VMOVUPD Y13, 96(BX)
	MOVQ R9, 128(BX)
	VZEROUPPER
	RET

// func updateSums32BF16Asm(m, v, t *byte, n int, k *updateConsts, a *updateLanes)
TEXT ·updateSums32BF16Asm(SB), NOSPLIT, $0-48
	MOVQ m+0(FP), SI
	MOVQ v+8(FP), DI
	MOVQ t+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), AX
	MOVQ a+40(FP), BX
	VBROADCASTSD 0(AX), Y8   // a
	VBROADCASTSD 8(AX), Y9   // b
	VXORPD Y15, Y15, Y15      // zero
	VMOVUPD 0(BX), Y10        // Σd² lanes 0-3
	VMOVUPD 32(BX), Y11       // Σd² lanes 4-7
	VMOVUPD 64(BX), Y12       // Σθ² lanes 0-3
	VMOVUPD 96(BX), Y13       // Σθ² lanes 4-7
	MOVQ 128(BX), R9          // negative count
	SHRQ $3, CX
	JZ updateSums32BF16Asm_done

updateSums32BF16Asm_loop:
	VCVTPS2PD (SI), Y0
	VCVTPS2PD 16(SI), Y1
	VMULPD Y8, Y0, Y0  // a·m
	VMULPD Y8, Y1, Y1
	VCVTPS2PD (DI), Y2
	VCVTPS2PD 16(DI), Y3
	VCMPPD $1, Y15, Y2, Y4 // v < 0
	VMOVMSKPD Y4, R8
	POPCNTQ R8, R8
	ADDQ R8, R9
	VCMPPD $1, Y15, Y3, Y4
	VMOVMSKPD Y4, R8
	POPCNTQ R8, R8
	ADDQ R8, R9
	VSQRTPD Y2, Y2
	VSQRTPD Y3, Y3
	VADDPD Y9, Y2, Y2  // √v + b
	VADDPD Y9, Y3, Y3
	VDIVPD Y2, Y0, Y0  // d
	VDIVPD Y3, Y1, Y1
	VMULPD Y0, Y0, Y0  // d²
	VMULPD Y1, Y1, Y1
	VADDPD Y0, Y10, Y10
	VADDPD Y1, Y11, Y11
	VPMOVZXWD (DX), Y3
	VPSLLD $16, Y3, Y3
	VCVTPS2PD X3, Y2
	VEXTRACTF128 $1, Y3, X3
	VCVTPS2PD X3, Y3
	VMULPD Y2, Y2, Y2  // θ²
	VMULPD Y3, Y3, Y3
	VADDPD Y2, Y12, Y12
	VADDPD Y3, Y13, Y13

	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $16, DX
	DECQ CX
	JNZ updateSums32BF16Asm_loop

updateSums32BF16Asm_done:
	VMOVUPD Y10, 0(BX)
	VMOVUPD Y11, 32(BX)
	VMOVUPD Y12, 64(BX)
	VMOVUPD Y13, 96(BX)
	MOVQ R9, 128(BX)
	VZEROUPPER
	RET

// func updateSums32F32Asm512(m, v, t *byte, n int, k *updateConsts, a *updateLanes)
TEXT ·updateSums32F32Asm512(SB), NOSPLIT, $0-48
	MOVQ m+0(FP), SI
	MOVQ v+8(FP), DI
	MOVQ t+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), AX
	MOVQ a+40(FP), BX
	VBROADCASTSD 0(AX), Z8   // a
	VBROADCASTSD 8(AX), Z9   // b
	VXORPD Y15, Y15, Y15      // zero (and the upper half of Z15)
	VMOVUPD 0(BX), Z10        // Σd² lanes 0-7
	VMOVUPD 64(BX), Z12       // Σθ² lanes 0-7
	MOVQ 128(BX), R9          // negative count
	SHRQ $3, CX
	JZ updateSums32F32Asm512_done

updateSums32F32Asm512_loop:
	VCVTPS2PD (SI), Z0
	VMULPD Z8, Z0, Z0   // a·m
	VCVTPS2PD (DI), Z1
	VCMPPD $1, Z15, Z1, K1 // v < 0
	KMOVW K1, R8
	POPCNTQ R8, R8
	ADDQ R8, R9
	VSQRTPD Z1, Z1
	VADDPD Z9, Z1, Z1   // √v + b
	VDIVPD Z1, Z0, Z0   // d
	VMULPD Z0, Z0, Z0   // d²
	VADDPD Z0, Z10, Z10
	VCVTPS2PD (DX), Z2
	VMULPD Z2, Z2, Z2   // θ²
	VADDPD Z2, Z12, Z12

	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	DECQ CX
	JNZ updateSums32F32Asm512_loop

updateSums32F32Asm512_done:
	VMOVUPD Z10, 0(BX)
	VMOVUPD Z12, 64(BX)
	MOVQ R9, 128(BX)
	VZEROUPPER
	RET

// func updateSums32BF16Asm512(m, v, t *byte, n int, k *updateConsts, a *updateLanes)
TEXT ·updateSums32BF16Asm512(SB), NOSPLIT, $0-48
	MOVQ m+0(FP), SI
	MOVQ v+8(FP), DI
	MOVQ t+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), AX
	MOVQ a+40(FP), BX
	VBROADCASTSD 0(AX), Z8   // a
	VBROADCASTSD 8(AX), Z9   // b
	VXORPD Y15, Y15, Y15      // zero (and the upper half of Z15)
	VMOVUPD 0(BX), Z10        // Σd² lanes 0-7
	VMOVUPD 64(BX), Z12       // Σθ² lanes 0-7
	MOVQ 128(BX), R9          // negative count
	SHRQ $3, CX
	JZ updateSums32BF16Asm512_done

updateSums32BF16Asm512_loop:
	VCVTPS2PD (SI), Z0
	VMULPD Z8, Z0, Z0   // a·m
	VCVTPS2PD (DI), Z1
	VCMPPD $1, Z15, Z1, K1 // v < 0
	KMOVW K1, R8
	POPCNTQ R8, R8
	ADDQ R8, R9
	VSQRTPD Z1, Z1
	VADDPD Z9, Z1, Z1   // √v + b
	VDIVPD Z1, Z0, Z0   // d
	VMULPD Z0, Z0, Z0   // d²
	VADDPD Z0, Z10, Z10
	VPMOVZXWD (DX), Y2
	VPSLLD $16, Y2, Y2
	VCVTPS2PD Y2, Z2
	VMULPD Z2, Z2, Z2   // θ²
	VADDPD Z2, Z12, Z12

	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $16, DX
	DECQ CX
	JNZ updateSums32BF16Asm512_loop

updateSums32BF16Asm512_done:
	VMOVUPD Z10, 0(BX)
	VMOVUPD Z12, 64(BX)
	MOVQ R9, 128(BX)
	VZEROUPPER
	RET
