//go:build !amd64 || noasm

package inspect

// No assembly quant sums here (another architecture, or a build with -tags
// noasm): the integer kernels take their sums from the tables.
var ggmlSumsAsmOK = false

// ggmlFoldQ8_0AsmOK says the Q8_0 fold's vector loop runs here.
var ggmlFoldQ8_0AsmOK = false

// ggmlExtremesQ6_KAsmOK says ggmlExtremesQ6_K runs in vector instructions
// here.
var ggmlExtremesQ6_KAsmOK = false

func ggmlExtremesQ6_KVec(src []byte, out [][2]int32) { ggmlExtremesQ6_KGo(src, out) }

// ggmlSumsQ4_KAsm512OK says the Q4_K sums' AVX-512 loop runs here.
var ggmlSumsQ4_KAsm512OK = false

// ggmlSumsQ5_KAsm512OK says the Q5_K sums' AVX-512 loop runs here.
var ggmlSumsQ5_KAsm512OK = false

// ggmlSumsQ6_KAsm512OK says the Q6_K sums' AVX-512 loop runs here.
var ggmlSumsQ6_KAsm512OK = false

// ggmlFoldQ8_0Asm512OK says the Q8_0 fold's AVX-512 loop runs here.
var ggmlFoldQ8_0Asm512OK = false

// ggmlSumsAsmBuilt says the vector loops are linked in.
const ggmlSumsAsmBuilt = false

func ggmlSumsQ4_KVec(src []byte, out []uint64) { ggmlSumsQ4_KGo(src, out) }
func ggmlSumsQ6_KVec(src []byte, out []uint64) { ggmlSumsQ6_KGo(src, out) }
func ggmlSupersQ6_KVec(src []byte, words []uint64, out []q6kSuper) {
	ggmlSupersQ6_KGo(src, words, out)
}
func ggmlFoldQ8_0Vec(src []byte, l *q8Lanes) int { return ggmlFoldQ8_0Go(src, l) }
func ggmlFoldQ5_0Vec(src []byte, l *q8Lanes) int { return ggmlFoldQ5_0Go(src, l) }
func ggmlFoldQ4_0Vec(src []byte, l *q8Lanes) int { return ggmlFoldQ4_0Go(src, l) }

// q4kCoreOK says q4kFastVec runs here (never: it needs the vector loop).
var q4kCoreOK = false

// q4kCoreAsm is never called here; should it be, it sends the super-block
// to q4kFast (q5kFast).
func q4kCoreAsm(t *uint64, scw, mw uint64, mdu, mmu int64, fl, fh, qmax float64, out *q4kCore) bool {
	return true
}

func ggmlSumsQ5_KVec(src []byte, out []uint64) { ggmlSumsQ5_KGo(src, out) }

func ggmlSumsQ5_1Vec(src []byte, out []uint64) { ggmlSumsQ5_1Go(src, out) }
