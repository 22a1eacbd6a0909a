//go:build !amd64 || noasm

package inspect

// No vector loops for the Q3_K sums here: ggmlSumsQ3_K and ggmlSupersQ3_K
// take theirs from the Go twins.
func ggmlSumsQ3_KVec(src []byte, out []uint64) { ggmlSumsQ3_KGo(src, out) }

func ggmlSupersQ3_KVec(scales, words []uint64, out []q6kSuper) {
	ggmlSupersQ3_KGo(scales, words, out)
}
