//go:build !amd64 || noasm

package inspect

// No vector loop for the Q2_K code sums here: the table twin.
func ggmlSumsQ2_KVec(src []byte, out []uint64) { ggmlSumsQ2_KGo(src, out) }
