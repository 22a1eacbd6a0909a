//go:build amd64 && !noasm

package inspect

// The IQ4_NL and IQ4_XS index sums and the Q4_1 code sums in AVX2
// (kernel_ggml_iq4_amd64.s), run where ggmlSumsAsmOK says the other quant
// sums' loops run.

// ggmlSumsIQ4_NLAsm writes, for each of n IQ4_NL blocks at p (18 bytes
// apart), tableSum16 of its indices over iq4Sums to out[i].
//
//go:noescape
func ggmlSumsIQ4_NLAsm(p *byte, n int, out *uint64)

// ggmlSumsIQ4_XSAsm writes, for each of n IQ4_XS super-blocks at p (136
// bytes apart), tableSum16 over iq4Sums of its eight sub-blocks' indices to
// out[8i], ..., out[8i+7].
//
//go:noescape
func ggmlSumsIQ4_XSAsm(p *byte, n int, out *uint64)

func ggmlSumsIQ4_NLVec(src []byte, out []uint64) {
	if n := len(src) / 18; n > 0 {
		ggmlSumsIQ4_NLAsm(&src[0], n, &out[:n][0])
	}
}

func ggmlSumsIQ4_XSVec(src []byte, out []uint64) {
	if n := len(src) / 136; n > 0 {
		ggmlSumsIQ4_XSAsm(&src[0], n, &out[:8*n][0])
	}
}

// ggmlSumsQ4_1Asm writes, for each of n Q4_1 blocks at p (20 bytes apart),
// Σc | Σc²<<32 over its 32 codes to out[i].
//
//go:noescape
func ggmlSumsQ4_1Asm(p *byte, n int, out *uint64)

func ggmlSumsQ4_1Vec(src []byte, out []uint64) {
	if n := len(src) / 20; n > 0 {
		ggmlSumsQ4_1Asm(&src[0], n, &out[:n][0])
	}
}
