//go:build amd64 && !noasm

package inspect

import "golang.org/x/sys/cpu"

// The quant sums of the integer kernels (kernel_ggml.go) run in AVX2 on
// x86-64 CPUs that have it (and POPCNT), and the Q8_0 fold, the Q4_K, Q5_K
// and Q6_K sums and the Q6_K extremes in AVX-512 on those that have it; the
// loops are in
// kernel_ggml_amd64.s. Each writes, block by block, exactly the packed word
// its Go twin (kernel_ggml_sums.go) takes from the tables. Tests switch
// ggmlSumsAsmOK off to run the twins; -tags noasm leaves the assembly out
// (kernel_ggml_other.go).
var ggmlSumsAsmOK = cpu.X86.HasAVX2 && cpu.X86.HasPOPCNT

// ggmlFoldQ8_0AsmOK says the Q8_0 fold's vector loop runs here (it converts
// the fp16 scales with F16C).
var ggmlFoldQ8_0AsmOK = ggmlSumsAsmOK && cpu.X86.HasF16C

// ggmlFoldQ8_0Asm512OK says the Q8_0 fold takes eight blocks at a time in
// AVX-512 (ggmlFoldQ8_0Asm512: F, BW, VL, DQ and VNNI) before the AVX2 loop
// takes what is left. Tests switch it off to run the AVX2 loop alone.
var ggmlFoldQ8_0Asm512OK = ggmlFoldQ8_0AsmOK && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW &&
	cpu.X86.HasAVX512VL && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VNNI

// ggmlSumsAsmBuilt says the vector loops are linked in.
const ggmlSumsAsmBuilt = true

// ggmlSumsQ4_KAsm writes, for each of n Q4_K super-blocks at p (144 bytes
// apart), tableSum32 over nibbleSums of its four 32-byte groups of quants
// to out[4i], ..., out[4i+3].
//
//go:noescape
func ggmlSumsQ4_KAsm(p *byte, n int, out *uint64)

// ggmlSumsQ6_KAsm writes, for each of n Q6_K super-blocks at p (210 bytes
// apart), the q6Sums words of its sixteen sub-blocks to out[16i], ...,
// out[16i+15].
//
//go:noescape
func ggmlSumsQ6_KAsm(p *byte, n int, out *uint64)

// The vector quant sums over the whole blocks of src (out holds one word per
// block, four per Q4_K super-block).

func ggmlSumsQ4_KVec(src []byte, out []uint64) {
	if n := len(src) / 144; n > 0 {
		if ggmlSumsQ4_KAsm512OK {
			ggmlSumsQ4_KAsm512(&src[0], n, &out[:4*n][0])
			return
		}
		ggmlSumsQ4_KAsm(&src[0], n, &out[:4*n][0])
	}
}

// ggmlSumsQ4_KAsm512OK says ggmlSumsQ4_KVec takes a super-block's four
// groups at once in AVX-512 (F, BW) rather than one at a time in AVX2.
// Tests switch it off to run the AVX2 loop.
var ggmlSumsQ4_KAsm512OK = ggmlSumsAsmOK && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW

// ggmlSumsQ4_KAsm512 is ggmlSumsQ4_KAsm in AVX-512: the same words.
//
//go:noescape
func ggmlSumsQ4_KAsm512(p *byte, n int, out *uint64)

func ggmlSumsQ6_KVec(src []byte, out []uint64) {
	if n := len(src) / 210; n > 0 {
		if ggmlSumsQ6_KAsm512OK {
			ggmlSumsQ6_KAsm512(&src[0], n, &out[:16*n][0])
			return
		}
		ggmlSumsQ6_KAsm(&src[0], n, &out[:16*n][0])
	}
}

// ggmlSumsQ6_KAsm512OK says ggmlSumsQ6_KVec takes four sub-blocks to a
// register in AVX-512 (F, BW) rather than two in AVX2. Tests switch it off
// to run the AVX2 loop.
var ggmlSumsQ6_KAsm512OK = ggmlSumsAsmOK && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW

// ggmlSumsQ6_KAsm512 is ggmlSumsQ6_KAsm in AVX-512: the same words.
//
//go:noescape
func ggmlSumsQ6_KAsm512(p *byte, n int, out *uint64)

// ggmlSupersQ6_KAsm writes, for each of n Q6_K super-blocks at p (210 bytes
// apart) whose q6Sums words are at words (16 apart), its q6kSuper to
// out[i].
//
//go:noescape
func ggmlSupersQ6_KAsm(p *byte, words *uint64, n int, out *q6kSuper)

func ggmlSupersQ6_KVec(src []byte, words []uint64, out []q6kSuper) {
	if n := len(src) / 210; n > 0 {
		ggmlSupersQ6_KAsm(&src[0], &words[:16*n][0], n, &out[:n][0])
	}
}

// ggmlExtremesQ6_KAsmOK says ggmlExtremesQ6_K runs in AVX-512 here (F and
// BW); otherwise intQ6_K finds the extremes sub-block by sub-block. Tests
// switch it off.
var ggmlExtremesQ6_KAsmOK = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW

// ggmlExtremesQ6_KAsm512 writes, for each of n Q6_K super-blocks at p (210
// bytes apart), the least and the greatest sc·(code − 32) over its values to
// out[i].
//
//go:noescape
func ggmlExtremesQ6_KAsm512(p *byte, n int, out *[2]int32)

func ggmlExtremesQ6_KVec(src []byte, out [][2]int32) {
	if n := len(src) / 210; n > 0 {
		ggmlExtremesQ6_KAsm512(&src[0], n, &out[:n][0])
	}
}

// ggmlFoldQ8_0Asm folds n groups of four Q8_0 blocks at p into l as
// ggmlFoldQ8_0Go does, stopping at the first group q8Group must take; it
// returns how many it folded.
//
//go:noescape
func ggmlFoldQ8_0Asm(p *byte, n int, l *q8Lanes) int

// ggmlFoldQ8_0Asm512 folds n pairs of groups of four Q8_0 blocks at p into
// l as ggmlFoldQ8_0Go folds their 2n groups, stopping at the first pair
// holding a group q8Group must take; it returns how many groups it folded
// (even).
//
//go:noescape
func ggmlFoldQ8_0Asm512(p *byte, n int, l *q8Lanes) int

// ggmlFoldQ8_0Vec folds pairs of groups in AVX-512 where it runs, then the
// rest (an odd last group, or the good group of a pair it stopped at) in
// AVX2, stopping where the twin stops.
func ggmlFoldQ8_0Vec(src []byte, l *q8Lanes) int {
	n, g := len(src)/136, 0
	if ggmlFoldQ8_0Asm512OK && n >= 2 {
		g = ggmlFoldQ8_0Asm512(&src[0], n/2, l)
	}
	if g < n {
		g += ggmlFoldQ8_0Asm(&src[136*g], n-g, l)
	}
	return g
}

// ggmlFoldQ5_0Asm folds n groups of four Q5_0 blocks at p into l as
// ggmlFoldQ5_0Go does, stopping at the first group q5Group must take; it
// returns how many it folded.
//
//go:noescape
func ggmlFoldQ5_0Asm(p *byte, n int, l *q8Lanes) int

func ggmlFoldQ5_0Vec(src []byte, l *q8Lanes) int {
	if n := len(src) / 88; n > 0 {
		return ggmlFoldQ5_0Asm(&src[0], n, l)
	}
	return 0
}

// ggmlFoldQ4_0Asm folds n groups of four Q4_0 blocks at p into l as
// ggmlFoldQ4_0Go does, stopping at the first group q4Group must take; it
// returns how many it folded.
//
//go:noescape
func ggmlFoldQ4_0Asm(p *byte, n int, l *q8Lanes) int

func ggmlFoldQ4_0Vec(src []byte, l *q8Lanes) int {
	if n := len(src) / 72; n > 0 {
		return ggmlFoldQ4_0Asm(&src[0], n, l)
	}
	return 0
}

// q4kCoreOK says q4kFastVec runs here.
var q4kCoreOK = ggmlSumsAsmOK

// q4kCoreAsm finds the integer sums, range and possible zero values of a
// Q4_K or Q5_K super-block's sub-blocks for q4kFastVec and q5kFastVec (t
// its four nibbleSums or q5kSums words, scw and mw its scales and minimums
// as q4kUnpack gives them, mdu and mmu d and dmin in units, within int32;
// fl, fh the pass's extremes in units; qmax the largest code, 15 or 31):
// see kernel_ggml_amd64.s.
//
//go:noescape
func q4kCoreAsm(t *uint64, scw, mw uint64, mdu, mmu int64, fl, fh, qmax float64, out *q4kCore) (zero bool)

// ggmlSumsQ5_KAsm writes, for each of n Q5_K super-blocks at p (176 bytes
// apart), the q5kSums words of its four 32-byte groups of low parts to
// out[4i], ..., out[4i+3].
//
//go:noescape
func ggmlSumsQ5_KAsm(p *byte, n int, out *uint64)

func ggmlSumsQ5_KVec(src []byte, out []uint64) {
	if n := len(src) / 176; n > 0 {
		if ggmlSumsQ5_KAsm512OK {
			ggmlSumsQ5_KAsm512(&src[0], n, &out[:4*n][0])
			return
		}
		ggmlSumsQ5_KAsm(&src[0], n, &out[:4*n][0])
	}
}

// ggmlSumsQ5_KAsm512OK says ggmlSumsQ5_KVec takes two groups of low parts
// to a register in AVX-512 (F, BW) rather than one in AVX2. Tests switch it
// off to run the AVX2 loop.
var ggmlSumsQ5_KAsm512OK = ggmlSumsAsmOK && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW

// ggmlSumsQ5_KAsm512 is ggmlSumsQ5_KAsm in AVX-512: the same words.
//
//go:noescape
func ggmlSumsQ5_KAsm512(p *byte, n int, out *uint64)

// ggmlSumsQ5_1Asm writes, for each of n Q5_1 blocks at p (24 bytes apart),
// Σc | Σc²<<32 over its 32 codes to out[i].
//
//go:noescape
func ggmlSumsQ5_1Asm(p *byte, n int, out *uint64)

func ggmlSumsQ5_1Vec(src []byte, out []uint64) {
	if n := len(src) / 24; n > 0 {
		ggmlSumsQ5_1Asm(&src[0], n, &out[:n][0])
	}
}
