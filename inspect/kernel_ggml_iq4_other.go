//go:build !amd64 || noasm

package inspect

func ggmlSumsIQ4_NLVec(src []byte, out []uint64) { ggmlSumsIQ4_NLGo(src, out) }
func ggmlSumsIQ4_XSVec(src []byte, out []uint64) { ggmlSumsIQ4_XSGo(src, out) }
func ggmlSumsQ4_1Vec(src []byte, out []uint64)   { ggmlSumsQ4_1Go(src, out) }
