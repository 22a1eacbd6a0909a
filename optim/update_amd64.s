//go:build amd64 && !noasm

// The vector loops of the predicted update (see update.go). Each element's
// d² and θ² are computed lane by lane (each operation correctly rounded, as
// in the scalar twins) and added to the eight lane sums of Σd² and Σθ²
// (updateLanes: d[8], t[8], neg), element j of a step to lane j mod 8: in one
// AVX-512 register, or two AVX2 ones (lanes 0-3 and 4-7). The lanes of v below
// zero are counted (ordered comparison: NaN and -0 are not). BF16 weights are
// widened to FP32, FP32 values to float64, exactly.
//
// updateSumsAsm (float64 inputs) computes d = a·m / (√v + b) in float64,
// eight elements a step. The FP32 loops compute q = m / (√v + b32) in FP32
// (sixteen elements a step with AVX-512, eight with AVX2) and d = a·q in
// float64; a step where some q is not a normal FP32 number (and m is not
// zero) computes those elements' d in float64 instead (updateSumsAsm's
// formula), as updateSums32Go does element by element.

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

// The FP32-moment loops differ only in how they load the weights θ (FP32,
// or BF16 widened by a shift) and how far θ advances a step: the rest of
// each loop is one of the macros below (AVX2: UPD32_*, AVX-512: UPD512_*).
// Registers: SI m, DI v, DX θ, CX steps, AX updateConsts, BX updateLanes,
// R9 the count of v < 0.

// UPD32_PROLOGUE loads the arguments, the constants and the lanes; CX becomes the steps of 8.
#define UPD32_PROLOGUE \
	MOVQ m+0(FP), SI \
	MOVQ v+8(FP), DI \
	MOVQ t+16(FP), DX \
	MOVQ n+24(FP), CX \
	MOVQ k+32(FP), AX \
	MOVQ a+40(FP), BX \
	VBROADCASTSD 0(AX), Y8 \
	VBROADCASTSS 16(AX), Y9 \
	MOVL $0x00800000, R10 \
	VMOVD R10, X6 \
	VPBROADCASTD X6, Y6 \
	MOVL $0x7F7FFFFF, R10 \
	VMOVD R10, X7 \
	VPBROADCASTD X7, Y7 \
	MOVL $0x7FFFFFFF, R10 \
	VMOVD R10, X14 \
	VPBROADCASTD X14, Y14 \
	VXORPD Y15, Y15, Y15 \
	VMOVUPD 0(BX), Y10 \
	VMOVUPD 32(BX), Y11 \
	VMOVUPD 64(BX), Y12 \
	VMOVUPD 96(BX), Y13 \
	MOVQ 128(BX), R9 \
	SHRQ $3, CX

// UPD32_STEP counts v < 0, computes q = m / (√v + b32) in FP32 and d = a·q in float64 (Y0, Y1), and compares the mask of normal q (or m = 0) with all ones.
#define UPD32_STEP \
	VMOVUPS (SI), Y0 \
	VMOVUPS (DI), Y1 \
	VCMPPS $1, Y15, Y1, Y4 \
	VMOVMSKPS Y4, R8 \
	POPCNTL R8, R8 \
	ADDQ R8, R9 \
	VSQRTPS Y1, Y2 \
	VADDPS Y9, Y2, Y2 \
	VDIVPS Y2, Y0, Y2 \
	VANDPS Y14, Y2, Y3 \
	VCMPPS $0x1D, Y6, Y3, Y4 \
	VCMPPS $0x12, Y7, Y3, Y5 \
	VANDPS Y5, Y4, Y4 \
	VCMPPS $0, Y15, Y0, Y5 \
	VORPS Y5, Y4, Y4 \
	VCVTPS2PD X2, Y0 \
	VEXTRACTF128 $1, Y2, X1 \
	VCVTPS2PD X1, Y1 \
	VMULPD Y8, Y0, Y0 \
	VMULPD Y8, Y1, Y1 \
	VMOVMSKPS Y4, R8 \
	CMPL R8, $0xFF

// UPD32_D2 adds d² to the Σd² lanes.
#define UPD32_D2 \
	VMULPD Y0, Y0, Y0 \
	VMULPD Y1, Y1, Y1 \
	VADDPD Y0, Y10, Y10 \
	VADDPD Y1, Y11, Y11

// UPD32_T2 adds θ² (θ in Y2, Y3) to the Σθ² lanes.
#define UPD32_T2 \
	VMULPD Y2, Y2, Y2 \
	VMULPD Y3, Y3, Y3 \
	VADDPD Y2, Y12, Y12 \
	VADDPD Y3, Y13, Y13

// UPD32_EPILOGUE stores the lanes and the count and returns.
#define UPD32_EPILOGUE \
	VMOVUPD Y10, 0(BX) \
	VMOVUPD Y11, 32(BX) \
	VMOVUPD Y12, 64(BX) \
	VMOVUPD Y13, 96(BX) \
	MOVQ R9, 128(BX) \
	VZEROUPPER \
	RET

// UPD32_WIDE recomputes d = a·m / (√v + b) in float64 for the elements whose q is not normal.
#define UPD32_WIDE \
	VPMOVSXDQ X4, Y5 \
	VEXTRACTF128 $1, Y4, X4 \
	VPMOVSXDQ X4, Y4 \
	VCVTPS2PD (DI), Y3 \
	VSQRTPD Y3, Y3 \
	VBROADCASTSD 8(AX), Y2 \
	VADDPD Y2, Y3, Y3 \
	VCVTPS2PD (SI), Y2 \
	VMULPD Y8, Y2, Y2 \
	VDIVPD Y3, Y2, Y2 \
	VBLENDVPD Y5, Y0, Y2, Y0 \
	VCVTPS2PD 16(DI), Y3 \
	VSQRTPD Y3, Y3 \
	VBROADCASTSD 8(AX), Y2 \
	VADDPD Y2, Y3, Y3 \
	VCVTPS2PD 16(SI), Y2 \
	VMULPD Y8, Y2, Y2 \
	VDIVPD Y3, Y2, Y2 \
	VBLENDVPD Y4, Y1, Y2, Y1

// UPD512_PROLOGUE loads the arguments, the constants and the lanes; CX becomes the steps of 16.
#define UPD512_PROLOGUE \
	MOVQ m+0(FP), SI \
	MOVQ v+8(FP), DI \
	MOVQ t+16(FP), DX \
	MOVQ n+24(FP), CX \
	MOVQ k+32(FP), AX \
	MOVQ a+40(FP), BX \
	VBROADCASTSD 0(AX), Z8 \
	VBROADCASTSS 16(AX), Z9 \
	MOVL $0x00800000, R10 \
	VPBROADCASTD R10, Z16 \
	MOVL $0x7F7FFFFF, R10 \
	VPBROADCASTD R10, Z17 \
	MOVL $0x7FFFFFFF, R10 \
	VPBROADCASTD R10, Z18 \
	VBROADCASTSD 8(AX), Z19 \
	VXORPD Y15, Y15, Y15 \
	VMOVUPD 0(BX), Z10 \
	VMOVUPD 64(BX), Z12 \
	MOVQ 128(BX), R9 \
	SHRQ $4, CX

// UPD512_STEP is UPD32_STEP on 16 elements (d in Z4, Z5), ending in a test of the mask K2.
#define UPD512_STEP \
	VMOVUPS (SI), Z0 \
	VMOVUPS (DI), Z1 \
	VCMPPS $1, Z15, Z1, K1 \
	KMOVW K1, R8 \
	POPCNTL R8, R8 \
	ADDQ R8, R9 \
	VSQRTPS Z1, Z2 \
	VADDPS Z9, Z2, Z2 \
	VDIVPS Z2, Z0, Z2 \
	VPANDD Z18, Z2, Z3 \
	VCMPPS $0x1D, Z16, Z3, K2 \
	VCMPPS $0x12, Z17, Z3, K3 \
	KANDW K3, K2, K2 \
	VCMPPS $0, Z15, Z0, K3 \
	KORW K3, K2, K2 \
	VCVTPS2PD Y2, Z4 \
	VEXTRACTF64X4 $1, Z2, Y5 \
	VCVTPS2PD Y5, Z5 \
	VMULPD Z8, Z4, Z4 \
	VMULPD Z8, Z5, Z5 \
	KORTESTW K2, K2

// UPD512_D2 adds d² to the Σd² lanes.
#define UPD512_D2 \
	VMULPD Z4, Z4, Z4 \
	VMULPD Z5, Z5, Z5 \
	VADDPD Z4, Z10, Z10 \
	VADDPD Z5, Z10, Z10

// UPD512_T2 adds θ² (θ in Z6, Z7) to the Σθ² lanes.
#define UPD512_T2 \
	VMULPD Z6, Z6, Z6 \
	VMULPD Z7, Z7, Z7 \
	VADDPD Z6, Z12, Z12 \
	VADDPD Z7, Z12, Z12

// UPD512_EPILOGUE stores the lanes and the count and returns.
#define UPD512_EPILOGUE \
	VMOVUPD Z10, 0(BX) \
	VMOVUPD Z12, 64(BX) \
	MOVQ R9, 128(BX) \
	VZEROUPPER \
	RET

// UPD512_WIDE recomputes d in float64 for the elements whose q is not normal.
#define UPD512_WIDE \
	KNOTW K2, K2 \
	VCVTPS2PD (SI), Z20 \
	VMULPD Z8, Z20, Z20 \
	VCVTPS2PD (DI), Z21 \
	VSQRTPD Z21, Z21 \
	VADDPD Z19, Z21, Z21 \
	VDIVPD Z21, Z20, Z20 \
	VBLENDMPD Z20, Z4, K2, Z4 \
	KSHIFTRW $8, K2, K3 \
	VCVTPS2PD 32(SI), Z20 \
	VMULPD Z8, Z20, Z20 \
	VCVTPS2PD 32(DI), Z21 \
	VSQRTPD Z21, Z21 \
	VADDPD Z19, Z21, Z21 \
	VDIVPD Z21, Z20, Z20 \
	VBLENDMPD Z20, Z5, K3, Z5

// func updateSums32F32Asm(m, v, t *byte, n int, k *updateConsts, a *updateLanes)
TEXT ·updateSums32F32Asm(SB), NOSPLIT, $0-48
	UPD32_PROLOGUE
	JZ updateSums32F32Asm_done

updateSums32F32Asm_loop:
	UPD32_STEP
	JNE updateSums32F32Asm_wide

updateSums32F32Asm_sums:
	UPD32_D2
	VCVTPS2PD (DX), Y2       // θ of elements 0-3
	VCVTPS2PD 16(DX), Y3     // θ of elements 4-7
	UPD32_T2
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	DECQ CX
	JNZ updateSums32F32Asm_loop

updateSums32F32Asm_done:
	UPD32_EPILOGUE

updateSums32F32Asm_wide:
	UPD32_WIDE
	JMP updateSums32F32Asm_sums

// func updateSums32BF16Asm(m, v, t *byte, n int, k *updateConsts, a *updateLanes)
TEXT ·updateSums32BF16Asm(SB), NOSPLIT, $0-48
	UPD32_PROLOGUE
	JZ updateSums32BF16Asm_done

updateSums32BF16Asm_loop:
	UPD32_STEP
	JNE updateSums32BF16Asm_wide

updateSums32BF16Asm_sums:
	UPD32_D2
	VPMOVZXWD (DX), Y3
	VPSLLD $16, Y3, Y3
	VCVTPS2PD X3, Y2         // θ of elements 0-3
	VEXTRACTF128 $1, Y3, X3
	VCVTPS2PD X3, Y3         // θ of elements 4-7
	UPD32_T2
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $16, DX
	DECQ CX
	JNZ updateSums32BF16Asm_loop

updateSums32BF16Asm_done:
	UPD32_EPILOGUE

updateSums32BF16Asm_wide:
	UPD32_WIDE
	JMP updateSums32BF16Asm_sums

// func updateSums32F32Asm512(m, v, t *byte, n int, k *updateConsts, a *updateLanes)
TEXT ·updateSums32F32Asm512(SB), NOSPLIT, $0-48
	UPD512_PROLOGUE
	JZ updateSums32F32Asm512_done

updateSums32F32Asm512_loop:
	UPD512_STEP
	JCC updateSums32F32Asm512_wide

updateSums32F32Asm512_sums:
	UPD512_D2
	VCVTPS2PD (DX), Z6       // θ of elements 0-7
	VCVTPS2PD 32(DX), Z7     // θ of elements 8-15
	UPD512_T2
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, DX
	DECQ CX
	JNZ updateSums32F32Asm512_loop

updateSums32F32Asm512_done:
	UPD512_EPILOGUE

updateSums32F32Asm512_wide:
	UPD512_WIDE
	JMP updateSums32F32Asm512_sums

// func updateSums32BF16Asm512(m, v, t *byte, n int, k *updateConsts, a *updateLanes)
TEXT ·updateSums32BF16Asm512(SB), NOSPLIT, $0-48
	UPD512_PROLOGUE
	JZ updateSums32BF16Asm512_done

updateSums32BF16Asm512_loop:
	UPD512_STEP
	JCC updateSums32BF16Asm512_wide

updateSums32BF16Asm512_sums:
	UPD512_D2
	VPMOVZXWD (DX), Y6
	VPSLLD $16, Y6, Y6
	VCVTPS2PD Y6, Z6         // θ of elements 0-7
	VPMOVZXWD 16(DX), Y7
	VPSLLD $16, Y7, Y7
	VCVTPS2PD Y7, Z7         // θ of elements 8-15
	UPD512_T2
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $32, DX
	DECQ CX
	JNZ updateSums32BF16Asm512_loop

updateSums32BF16Asm512_done:
	UPD512_EPILOGUE

updateSums32BF16Asm512_wide:
	UPD512_WIDE
	JMP updateSums32BF16Asm512_sums
