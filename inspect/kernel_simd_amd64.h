// Offsets of the Go structs and run lengths shared by the vector scan
// loops (kernel_simd_amd64.s, AVX2; kernel_simd512_amd64.s, AVX-512);
// TestSIMDAsmOffsets checks them against the Go side.

// simdLanes and simdLanes32 offsets.
#define L_SUM 0
#define L_SQ 128
#define L_KMIN 256
#define L_KMAX 288
#define L_ZEROS 320
#define L_NONTINY 352
#define L_BAD 384
#define L_PINF 416
#define L_NINF 448
#define L_SCRATCH 480 // 16-bit loops only: 64 bytes
#define L_SMAX 544    // narrow loops only: the largest raw pattern as int16,
#define L_UMAX 576    // as uint16,
#define L_AMIN 608    // and the smallest magnitude

// How many pairs of groups of 16 the narrow loops fold into their float32
// lanes before adding them to the float64 lanes (narrowPairs in
// kernel_simd.go).
#define N_PAIRS 8

// The same for the F32 narrow loop (narrow32Pairs).
#define N_PAIRS32 4

// simdConsts and simdConsts32 offsets: patterns repeated over 32 bytes.
#define C_ABS 0      // 0x7FFF: the magnitude bits
#define C_TINY 32    // largest magnitude below the smallest normal (0x007F BF16, 0x03FF F16)
#define C_FINITE 64  // largest finite magnitude (0x7F7F BF16, 0x7BFF F16)
#define C_PINF 96    // +Inf
#define C_NINF 128   // -Inf
#define C_MININT 160 // F32: the smallest int32
#define C_HI 160     // BF16: 0xFFFF0000, the high pattern of each 32-bit lane
#define C_ZERO 192   // F32: zero
