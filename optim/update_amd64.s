//go:build amd64 && !noasm

// The vector loops of the predicted update (see update.go): four elements per
// step. d = lr·(m/c1) / (√(v/c2) + ε) and the squares d², θ² are computed on
// four lanes at once (each operation correctly rounded, as in the scalar
// twin), then added to the two sums one lane at a time, lanes 0 to 3: the
// order of the element loop. The lanes of v below zero are counted (ordered
// comparison: NaN and -0 are not). FP32 and BF16 inputs are widened to float64
// as they are loaded (exactly). The AVX-512 loops take eight elements per
// step, the same way (lanes 0 to 7).

#include "textflag.h"

// func updateSumsAsm(m, v, t *float64, n int, k *updateConsts, a *updateAcc)
TEXT ·updateSumsAsm(SB), NOSPLIT, $0-48
	MOVQ m+0(FP), SI
	MOVQ v+8(FP), DI
	MOVQ t+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), AX
	MOVQ a+40(FP), BX
	VBROADCASTSD 0(AX), Y8   // c1
	VBROADCASTSD 8(AX), Y9   // c2
	VBROADCASTSD 16(AX), Y10 // lr
	VBROADCASTSD 24(AX), Y11 // eps
	VXORPD Y15, Y15, Y15
	VMOVSD 0(BX), X12        // Σd²
	VMOVSD 8(BX), X13        // Σθ²
	MOVQ 16(BX), R9          // negative count
	SHRQ $2, CX
	JZ updateSumsAsm_done

updateSumsAsm_loop:
	VMOVUPD (SI), Y0
	VDIVPD Y8, Y0, Y0  // m / c1
	VMULPD Y10, Y0, Y0 // lr · (m / c1)
	VMOVUPD (DI), Y1
	VCMPPD $1, Y15, Y1, Y4 // v < 0
	VMOVMSKPD Y4, R8
	POPCNTQ R8, R8
	ADDQ R8, R9
	VDIVPD Y9, Y1, Y1  // v / c2
	VSQRTPD Y1, Y1
	VADDPD Y11, Y1, Y1 // √(v / c2) + ε
	VDIVPD Y1, Y0, Y0  // d
	VMULPD Y0, Y0, Y0  // d²
	VMOVUPD (DX), Y2
	VMULPD Y2, Y2, Y2  // θ²

	VEXTRACTF128 $1, Y0, X3
	VEXTRACTF128 $1, Y2, X4
	VPERMILPD $1, X0, X5
	VPERMILPD $1, X3, X6
	VPERMILPD $1, X2, X7
	VPERMILPD $1, X4, X14
	VADDSD X0, X12, X12
	VADDSD X2, X13, X13
	VADDSD X5, X12, X12
	VADDSD X7, X13, X13
	VADDSD X3, X12, X12
	VADDSD X4, X13, X13
	VADDSD X6, X12, X12
	VADDSD X14, X13, X13

	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	DECQ CX
	JNZ updateSumsAsm_loop

updateSumsAsm_done:
	VMOVSD X12, 0(BX)
	VMOVSD X13, 8(BX)
	MOVQ R9, 16(BX)
	VZEROUPPER
	RET

// func updateSums32F32Asm(m, v, t *byte, n int, k *updateConsts, a *updateAcc)
TEXT ·updateSums32F32Asm(SB), NOSPLIT, $0-48
	MOVQ m+0(FP), SI
	MOVQ v+8(FP), DI
	MOVQ t+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), AX
	MOVQ a+40(FP), BX
	VBROADCASTSD 0(AX), Y8   // c1
	VBROADCASTSD 8(AX), Y9   // c2
	VBROADCASTSD 16(AX), Y10 // lr
	VBROADCASTSD 24(AX), Y11 // eps
	VXORPD Y15, Y15, Y15
	VMOVSD 0(BX), X12        // Σd²
	VMOVSD 8(BX), X13        // Σθ²
	MOVQ 16(BX), R9          // negative count
	SHRQ $2, CX
	JZ updateSums32F32Asm_done

updateSums32F32Asm_loop:
	VCVTPS2PD (SI), Y0
	VDIVPD Y8, Y0, Y0  // m / c1
	VMULPD Y10, Y0, Y0 // lr · (m / c1)
	VCVTPS2PD (DI), Y1
	VCMPPD $1, Y15, Y1, Y4 // v < 0
	VMOVMSKPD Y4, R8
	POPCNTQ R8, R8
	ADDQ R8, R9
	VDIVPD Y9, Y1, Y1  // v / c2
	VSQRTPD Y1, Y1
	VADDPD Y11, Y1, Y1 // √(v / c2) + ε
	VDIVPD Y1, Y0, Y0  // d
	VMULPD Y0, Y0, Y0  // d²
	VCVTPS2PD (DX), Y2
	VMULPD Y2, Y2, Y2  // θ²

	VEXTRACTF128 $1, Y0, X3
	VEXTRACTF128 $1, Y2, X4
	VPERMILPD $1, X0, X5
	VPERMILPD $1, X3, X6
	VPERMILPD $1, X2, X7
	VPERMILPD $1, X4, X14
	VADDSD X0, X12, X12
	VADDSD X2, X13, X13
	VADDSD X5, X12, X12
	VADDSD X7, X13, X13
	VADDSD X3, X12, X12
	VADDSD X4, X13, X13
	VADDSD X6, X12, X12
	VADDSD X14, X13, X13

	ADDQ $16, SI
	ADDQ $16, DI
	ADDQ $16, DX
	DECQ CX
	JNZ updateSums32F32Asm_loop

updateSums32F32Asm_done:
	VMOVSD X12, 0(BX)
	VMOVSD X13, 8(BX)
	MOVQ R9, 16(BX)
	VZEROUPPER
	RET

// func updateSums32BF16Asm(m, v, t *byte, n int, k *updateConsts, a *updateAcc)
TEXT ·updateSums32BF16Asm(SB), NOSPLIT, $0-48
	MOVQ m+0(FP), SI
	MOVQ v+8(FP), DI
	MOVQ t+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), AX
	MOVQ a+40(FP), BX
	VBROADCASTSD 0(AX), Y8   // c1
	VBROADCASTSD 8(AX), Y9   // c2
	VBROADCASTSD 16(AX), Y10 // lr
	VBROADCASTSD 24(AX), Y11 // eps
	VXORPD Y15, Y15, Y15
	VMOVSD 0(BX), X12        // Σd²
	VMOVSD 8(BX), X13        // Σθ²
	MOVQ 16(BX), R9          // negative count
	SHRQ $2, CX
	JZ updateSums32BF16Asm_done

updateSums32BF16Asm_loop:
	VCVTPS2PD (SI), Y0
	VDIVPD Y8, Y0, Y0  // m / c1
	VMULPD Y10, Y0, Y0 // lr · (m / c1)
	VCVTPS2PD (DI), Y1
	VCMPPD $1, Y15, Y1, Y4 // v < 0
	VMOVMSKPD Y4, R8
	POPCNTQ R8, R8
	ADDQ R8, R9
	VDIVPD Y9, Y1, Y1  // v / c2
	VSQRTPD Y1, Y1
	VADDPD Y11, Y1, Y1 // √(v / c2) + ε
	VDIVPD Y1, Y0, Y0  // d
	VMULPD Y0, Y0, Y0  // d²
	VPMOVZXWD (DX), X2
	VPSLLD $16, X2, X2
	VCVTPS2PD X2, Y2
	VMULPD Y2, Y2, Y2  // θ²

	VEXTRACTF128 $1, Y0, X3
	VEXTRACTF128 $1, Y2, X4
	VPERMILPD $1, X0, X5
	VPERMILPD $1, X3, X6
	VPERMILPD $1, X2, X7
	VPERMILPD $1, X4, X14
	VADDSD X0, X12, X12
	VADDSD X2, X13, X13
	VADDSD X5, X12, X12
	VADDSD X7, X13, X13
	VADDSD X3, X12, X12
	VADDSD X4, X13, X13
	VADDSD X6, X12, X12
	VADDSD X14, X13, X13

	ADDQ $16, SI
	ADDQ $16, DI
	ADDQ $8, DX
	DECQ CX
	JNZ updateSums32BF16Asm_loop

updateSums32BF16Asm_done:
	VMOVSD X12, 0(BX)
	VMOVSD X13, 8(BX)
	MOVQ R9, 16(BX)
	VZEROUPPER
	RET

// func updateSums32F32Asm512(m, v, t *byte, n int, k *updateConsts, a *updateAcc)
// updateSums32F32Asm on eight lanes (AVX-512).
TEXT ·updateSums32F32Asm512(SB), NOSPLIT, $0-48
	MOVQ m+0(FP), SI
	MOVQ v+8(FP), DI
	MOVQ t+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), AX
	MOVQ a+40(FP), BX
	VBROADCASTSD 0(AX), Z8   // c1
	VBROADCASTSD 8(AX), Z9   // c2
	VBROADCASTSD 16(AX), Z10 // lr
	VBROADCASTSD 24(AX), Z11 // eps
	VXORPD Y15, Y15, Y15     // (and the upper half of Z15)
	VMOVSD 0(BX), X12        // Σd²
	VMOVSD 8(BX), X13        // Σθ²
	MOVQ 16(BX), R9          // negative count
	SHRQ $3, CX
	JZ updateSums32F32Asm512_done

updateSums32F32Asm512_loop:
	VCVTPS2PD (SI), Z0
	VDIVPD Z8, Z0, Z0   // m / c1
	VMULPD Z10, Z0, Z0  // lr · (m / c1)
	VCVTPS2PD (DI), Z1
	VCMPPD $1, Z15, Z1, K1 // v < 0
	KMOVW K1, R8
	POPCNTQ R8, R8
	ADDQ R8, R9
	VDIVPD Z9, Z1, Z1   // v / c2
	VSQRTPD Z1, Z1
	VADDPD Z11, Z1, Z1  // √(v / c2) + ε
	VDIVPD Z1, Z0, Z0   // d
	VMULPD Z0, Z0, Z0   // d²
	VCVTPS2PD (DX), Z2
	VMULPD Z2, Z2, Z2   // θ²

	VEXTRACTF64X4 $1, Z0, Y4 // lanes 4-7
	VEXTRACTF64X4 $1, Z2, Y5
	// lanes 0-3
	VEXTRACTF128 $1, Y0, X3
	VEXTRACTF128 $1, Y2, X7
	VPERMILPD $1, X0, X1
	VPERMILPD $1, X2, X6
	VADDSD X0, X12, X12
	VADDSD X2, X13, X13
	VADDSD X1, X12, X12
	VADDSD X6, X13, X13
	VPERMILPD $1, X3, X1
	VPERMILPD $1, X7, X6
	VADDSD X3, X12, X12
	VADDSD X7, X13, X13
	VADDSD X1, X12, X12
	VADDSD X6, X13, X13
	// lanes 4-7
	VEXTRACTF128 $1, Y4, X3
	VEXTRACTF128 $1, Y5, X7
	VPERMILPD $1, X4, X1
	VPERMILPD $1, X5, X6
	VADDSD X4, X12, X12
	VADDSD X5, X13, X13
	VADDSD X1, X12, X12
	VADDSD X6, X13, X13
	VPERMILPD $1, X3, X1
	VPERMILPD $1, X7, X6
	VADDSD X3, X12, X12
	VADDSD X7, X13, X13
	VADDSD X1, X12, X12
	VADDSD X6, X13, X13

	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	DECQ CX
	JNZ updateSums32F32Asm512_loop

updateSums32F32Asm512_done:
	VMOVSD X12, 0(BX)
	VMOVSD X13, 8(BX)
	MOVQ R9, 16(BX)
	VZEROUPPER
	RET

// func updateSums32BF16Asm512(m, v, t *byte, n int, k *updateConsts, a *updateAcc)
// updateSums32BF16Asm on eight lanes (AVX-512).
TEXT ·updateSums32BF16Asm512(SB), NOSPLIT, $0-48
	MOVQ m+0(FP), SI
	MOVQ v+8(FP), DI
	MOVQ t+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ k+32(FP), AX
	MOVQ a+40(FP), BX
	VBROADCASTSD 0(AX), Z8   // c1
	VBROADCASTSD 8(AX), Z9   // c2
	VBROADCASTSD 16(AX), Z10 // lr
	VBROADCASTSD 24(AX), Z11 // eps
	VXORPD Y15, Y15, Y15     // (and the upper half of Z15)
	VMOVSD 0(BX), X12        // Σd²
	VMOVSD 8(BX), X13        // Σθ²
	MOVQ 16(BX), R9          // negative count
	SHRQ $3, CX
	JZ updateSums32BF16Asm512_done

updateSums32BF16Asm512_loop:
	VCVTPS2PD (SI), Z0
	VDIVPD Z8, Z0, Z0   // m / c1
	VMULPD Z10, Z0, Z0  // lr · (m / c1)
	VCVTPS2PD (DI), Z1
	VCMPPD $1, Z15, Z1, K1 // v < 0
	KMOVW K1, R8
	POPCNTQ R8, R8
	ADDQ R8, R9
	VDIVPD Z9, Z1, Z1   // v / c2
	VSQRTPD Z1, Z1
	VADDPD Z11, Z1, Z1  // √(v / c2) + ε
	VDIVPD Z1, Z0, Z0   // d
	VMULPD Z0, Z0, Z0   // d²
	VPMOVZXWD (DX), Y2
	VPSLLD $16, Y2, Y2
	VCVTPS2PD Y2, Z2
	VMULPD Z2, Z2, Z2   // θ²

	VEXTRACTF64X4 $1, Z0, Y4 // lanes 4-7
	VEXTRACTF64X4 $1, Z2, Y5
	// lanes 0-3
	VEXTRACTF128 $1, Y0, X3
	VEXTRACTF128 $1, Y2, X7
	VPERMILPD $1, X0, X1
	VPERMILPD $1, X2, X6
	VADDSD X0, X12, X12
	VADDSD X2, X13, X13
	VADDSD X1, X12, X12
	VADDSD X6, X13, X13
	VPERMILPD $1, X3, X1
	VPERMILPD $1, X7, X6
	VADDSD X3, X12, X12
	VADDSD X7, X13, X13
	VADDSD X1, X12, X12
	VADDSD X6, X13, X13
	// lanes 4-7
	VEXTRACTF128 $1, Y4, X3
	VEXTRACTF128 $1, Y5, X7
	VPERMILPD $1, X4, X1
	VPERMILPD $1, X5, X6
	VADDSD X4, X12, X12
	VADDSD X5, X13, X13
	VADDSD X1, X12, X12
	VADDSD X6, X13, X13
	VPERMILPD $1, X3, X1
	VPERMILPD $1, X7, X6
	VADDSD X3, X12, X12
	VADDSD X7, X13, X13
	VADDSD X1, X12, X12
	VADDSD X6, X13, X13

	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $16, DX
	DECQ CX
	JNZ updateSums32BF16Asm512_loop

updateSums32BF16Asm512_done:
	VMOVSD X12, 0(BX)
	VMOVSD X13, 8(BX)
	MOVQ R9, 16(BX)
	VZEROUPPER
	RET
