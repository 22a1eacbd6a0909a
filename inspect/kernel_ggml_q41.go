package inspect

// The integer kernel of Q4_1 (block: fp16 d and m, 16 bytes of 4-bit codes,
// value j the low nibble of qs[j] for j < 16, the high nibble of qs[j−16]
// after; the value float32(c·d) + m, as dequantize_row_q4_1 computes it).
// It is Q5_1's kernel (intAffine, kernel_ggml_q51.go) with 4-bit codes: c·d
// is md·c·2^ed, at most 15 bits, exact; the addition is exact when
// |A·c + M| < 2^24 over the smaller scale's unit for every c in [0, 15], as
// it is when d and m are within a few binades (llama.cpp's quantizer makes
// m the block's minimum and d its range over 15); a block where it is not
// is folded value by value. The code sums are q4Sums' (Q4_0's table: Σc in
// bits 0–15, Σc² in bits 32–63), sixteen bytes to a block, or the same
// words from an AVX2 loop.

// q41Codes writes the 32 codes of a Q4_1 block to c, as dequantize_row_q4_1
// reads them.
func q41Codes(b *[20]byte, c *[32]byte) {
	for j, q := range b[4:20] {
		c[j], c[j+16] = q&15, q>>4
	}
}

// ggmlSumsQ4_1 writes, for each whole Q4_1 block of src, Σc | Σc²<<32 over
// its 32 codes to out (AVX2 where ggmlSumsAsmOK, kernel_ggml_iq4_amd64.s,
// else the table).
func ggmlSumsQ4_1(src []byte, out []uint64) {
	if ggmlSumsAsmOK {
		ggmlSumsQ4_1Vec(src, out)
		return
	}
	ggmlSumsQ4_1Go(src, out)
}

// ggmlSumsQ4_1Go is the Go twin of ggmlSumsQ4_1's vector loop: q4Sums
// without its count of eights.
func ggmlSumsQ4_1Go(src []byte, out []uint64) {
	for i := 0; 20*i+20 <= len(src); i++ {
		out[i] = tableSum16((*[16]byte)(src[20*i+4:]), &q4Sums) &^ 0xffff0000
	}
}
