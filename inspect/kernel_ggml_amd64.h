// Macros the ggml sum loops of several files share (kernel_ggml_amd64.s,
// kernel_ggml_iq4_amd64.s, kernel_ggml_q3k_amd64.s).

// HSUMQ stores the sum of the four 64-bit lanes of R at dst: X is R's low
// half, T an XMM scratch register.
#define HSUMQ(R, X, T, dst) \
	VEXTRACTI128 $1, R, T \
	VPADDQ T, X, X \
	VPSHUFD $0x4E, X, T \
	VPADDQ T, X, X \
	VMOVQ X, dst

// REDUCE adds the four 64-bit lanes of Y0 into BX (X1 is clobbered).
#define REDUCE HSUMQ(Y0, X0, X1, BX)
