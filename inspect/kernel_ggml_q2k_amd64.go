//go:build amd64 && !noasm

package inspect

// ggmlSumsQ2_KAsm writes, for each of n Q2_K super-blocks at p (84 bytes
// apart), the eight words of its sub-blocks' code sums (as ggmlSumsQ2_KGo
// writes them) to out[8i], ..., out[8i+7] (kernel_ggml_q2k_amd64.s).
//
//go:noescape
func ggmlSumsQ2_KAsm(p *byte, n int, out *uint64)

// ggmlSumsQ2_KVec is ggmlSumsQ2_K's vector loop over the whole super-blocks
// of src.
func ggmlSumsQ2_KVec(src []byte, out []uint64) {
	if n := len(src) / 84; n > 0 {
		ggmlSumsQ2_KAsm(&src[0], n, &out[:8*n][0])
	}
}
