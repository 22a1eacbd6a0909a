//go:build !amd64 || noasm

package inspect

// No vector loop for the Q3_K sums here: ggmlSumsQ3_K takes its words from
// the Go twin.
func ggmlSumsQ3_KVec(src []byte, out []uint64) { ggmlSumsQ3_KGo(src, out) }
