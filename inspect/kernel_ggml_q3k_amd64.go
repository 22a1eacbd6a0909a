//go:build amd64 && !noasm

package inspect

// ggmlSumsQ3_KAsm writes, for each of n Q3_K super-blocks at p (110 bytes
// apart), the q3kSums words of its sixteen sub-blocks to out[16i], ...,
// out[16i+15] (AVX2, kernel_ggml_q3k_amd64.s; it runs where ggmlSumsAsmOK
// says the other quant sums' loops do).
//
//go:noescape
func ggmlSumsQ3_KAsm(p *byte, n int, out *uint64)

func ggmlSumsQ3_KVec(src []byte, out []uint64) {
	if n := len(src) / 110; n > 0 {
		ggmlSumsQ3_KAsm(&src[0], n, &out[:16*n][0])
	}
}

// ggmlSupersQ3_KAsm writes, for each of n Q3_K super-blocks whose scales are
// at scales (two words each, q3kScales) and q3kSums words at words (16
// each), its q3kSuper to out[i] (AVX2).
//
//go:noescape
func ggmlSupersQ3_KAsm(scales, words *uint64, n int, out *q6kSuper)

func ggmlSupersQ3_KVec(scales, words []uint64, out []q6kSuper) {
	if n := len(out); n > 0 {
		ggmlSupersQ3_KAsm(&scales[:2*n][0], &words[:16*n][0], n, &out[0])
	}
}
