package inspect

import "math"

// The quant sums of the integer kernels of Q5_1, Q4_K, Q5_K and Q6_K
// (kernel_ggml.go, kernel_ggml_q51.go, kernel_ggml_q5k.go), a batch of
// blocks at a time: one packed word per block (four per Q4_K or Q5_K
// super-block, sixteen per Q6_K one) whose fields are the sums the kernel
// needs (q51Sums, nibbleSums, q5kSums, q6Sums). The vector loops
// (kernel_ggml_amd64.s) and their Go twins here, which add up the tables,
// write the same words bit for bit (TestGGMLSumsAsm). Then, for Q6_K, each
// super-block's sums over its scales (ggmlSupersQ6_K, AVX2) and its extremes
// (ggmlExtremesQ6_K, AVX-512), each with its Go twin. Q8_0, Q5_0 and Q4_0
// fold whole groups of blocks instead (kernel_ggml_q8.go).

// ggmlSumsBatch is how many blocks' words an integer kernel asks for at a
// time (a pass of Q5_1 blocks; 64 Q4_K or 16 Q6_K super-blocks take all
// 256).
const ggmlSumsBatch = 256

// ggmlSumsQ4_K writes the nibbleSums words of the four 32-byte groups of
// quants of each whole Q4_K super-block of src to out.
func ggmlSumsQ4_K(src []byte, out []uint64) {
	if ggmlSumsAsmOK {
		ggmlSumsQ4_KVec(src, out)
		return
	}
	ggmlSumsQ4_KGo(src, out)
}

// ggmlSumsQ4_KGo is the Go twin of ggmlSumsQ4_K's vector loop.
func ggmlSumsQ4_KGo(src []byte, out []uint64) {
	for i := 0; 144*i+144 <= len(src); i++ {
		for g := 0; g < 4; g++ {
			out[4*i+g] = tableSum32((*[32]byte)(src[144*i+16+32*g:]), &nibbleSums)
		}
	}
}

// ggmlSumsQ5_K writes the q5kSums words of the four 32-byte groups of low
// parts of each whole Q5_K super-block of src to out (word 4i+g: sub-blocks
// 2g and 2g+1 of super-block i).
func ggmlSumsQ5_K(src []byte, out []uint64) {
	if ggmlSumsAsmOK {
		ggmlSumsQ5_KVec(src, out)
		return
	}
	ggmlSumsQ5_KGo(src, out)
}

// ggmlSumsQ5_KGo is the Go twin of ggmlSumsQ5_K's vector loop: each byte of
// low parts and its two fifth bits index q5kSums.
func ggmlSumsQ5_KGo(src []byte, out []uint64) {
	for i := 0; 176*i+176 <= len(src); i++ {
		b := (*[176]byte)(src[176*i:])
		qh := (*[32]byte)(b[16:48])
		for g := 0; g < 4; g++ {
			ql := (*[32]byte)(b[48+32*g:])
			sh := uint(2 * g)
			var w0, w1 uint64
			for l := 0; l < 32; l += 2 {
				w0 += q5kSums[uint(qh[l]>>sh&3)<<8|uint(ql[l])]
				w1 += q5kSums[uint(qh[l+1]>>sh&3)<<8|uint(ql[l+1])]
			}
			out[4*i+g] = w0 + w1
		}
	}
}

// ggmlSumsQ5_1 writes, for each whole Q5_1 block of src, Σc | Σc²<<32 over
// its 32 codes to out.
func ggmlSumsQ5_1(src []byte, out []uint64) {
	if ggmlSumsAsmOK {
		ggmlSumsQ5_1Vec(src, out)
		return
	}
	ggmlSumsQ5_1Go(src, out)
}

// ggmlSumsQ5_1Go is the Go twin of ggmlSumsQ5_1's vector loop (q51Sums).
func ggmlSumsQ5_1Go(src []byte, out []uint64) {
	for i := 0; 24*i+24 <= len(src); i++ {
		s1, s2 := q51Sums((*[24]byte)(src[24*i:]))
		out[i] = uint64(s1) | uint64(s2)<<32
	}
}

// ggmlSumsQ6_K writes the q6Sums words of the sixteen 16-value sub-blocks of
// each whole Q6_K super-block of src to out (word 16i+j for the sub-block
// that scale j of super-block i scales).
func ggmlSumsQ6_K(src []byte, out []uint64) {
	if ggmlSumsAsmOK {
		ggmlSumsQ6_KVec(src, out)
		return
	}
	ggmlSumsQ6_KGo(src, out)
}

// ggmlSumsQ6_KGo is the Go twin of ggmlSumsQ6_K's vector loop.
func ggmlSumsQ6_KGo(src []byte, out []uint64) {
	for i := 0; 210*i+210 <= len(src); i++ {
		b := (*[210]byte)(src[210*i:])
		for j := 0; j < 16; j++ {
			var w uint64
			for l := 0; l < 16; l++ {
				w += q6Sums[q6Code(b, j, l)]
			}
			out[16*i+j] = w
		}
	}
}

// q6kSuper is what intQ6_K needs of a Q6_K super-block beyond its scale d:
// the sums over its sixteen sub-blocks (sc their int8 scales) of sc·Σq and
// sc²·Σq² (q = code − 32; below 2^20 and 2^32 in magnitude), its zero
// values, whether a sub-block with zero values has sc < 0 (zneg) or sc ≥ 0
// (zpos), and the largest |sc|.
type q6kSuper struct {
	s1, s2     int64
	zeros      uint64
	zneg, zpos uint64 // 0 or 1
	amax       uint64
}

// ggmlSupersQ6_K writes the q6kSuper of each whole Q6_K super-block of src
// to out, from its sixteen q6Sums words in words (as ggmlSumsQ6_K writes
// them).
func ggmlSupersQ6_K(src []byte, words []uint64, out []q6kSuper) {
	if ggmlSumsAsmOK {
		ggmlSupersQ6_KVec(src, words, out)
		return
	}
	ggmlSupersQ6_KGo(src, words, out)
}

// ggmlSupersQ6_KGo is the Go twin of ggmlSupersQ6_K's vector loop.
func ggmlSupersQ6_KGo(src []byte, words []uint64, out []q6kSuper) {
	for i := 0; 210*i+210 <= len(src); i++ {
		var r q6kSuper
		for j, t := range (*[16]uint64)(words[16*i:]) {
			c := int64(int8(src[210*i+192+j]))
			c1, c2 := int64(t&0xffff), int64(t>>32)
			r.s1 += c * (c1 - 16*32)
			r.s2 += c * c * (c2 - 64*c1 + 16*32*32)
			z := t >> 16 & 0xffff
			r.zeros += z
			if z > 0 && c < 0 {
				r.zneg = 1
			}
			if z > 0 && c >= 0 {
				r.zpos = 1
			}
			r.amax = max(r.amax, uint64(abs64(c)))
		}
		out[i] = r
	}
}

// ggmlExtremesQ6_K writes to out, for each whole Q6_K super-block of src, the
// least and the greatest of sc·(code − 32) over its values (sc the scale of
// each one's sub-block): its extremes in units of d. Only where
// ggmlExtremesQ6_KAsmOK (AVX-512) is it asked for.
func ggmlExtremesQ6_K(src []byte, out [][2]int32) {
	if ggmlExtremesQ6_KAsmOK {
		ggmlExtremesQ6_KVec(src, out)
		return
	}
	ggmlExtremesQ6_KGo(src, out)
}

// ggmlExtremesQ6_KGo is the Go twin of ggmlExtremesQ6_K's vector loop.
func ggmlExtremesQ6_KGo(src []byte, out [][2]int32) {
	for i := 0; 210*i+210 <= len(src); i++ {
		b := (*[210]byte)(src[210*i:])
		lo, hi := int32(math.MaxInt32), int32(math.MinInt32)
		for j := 0; j < 16; j++ {
			sc := int32(int8(b[192+j]))
			clo, chi := q6kCodeRangeGo(b, j)
			x, y := sc*(int32(clo)-32), sc*(int32(chi)-32)
			lo, hi = min(lo, x, y), max(hi, x, y)
		}
		out[i] = [2]int32{lo, hi}
	}
}
