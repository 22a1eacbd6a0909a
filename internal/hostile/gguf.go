package hostile

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/ckpt-tool/ckpt/formats"
)

// ggufBase is a small valid GGUF v3 file written by hand: three metadata
// pairs (a string, a u32, an array of strings) and two tensors, an F32 [8]
// and a Q8_0 [32] (one block, scale 1.0).
func ggufBase() []byte {
	var b []byte
	u32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	u64 := func(v uint64) { b = binary.LittleEndian.AppendUint64(b, v) }
	str := func(s string) { u64(uint64(len(s))); b = append(b, s...) }
	b = append(b, "GGUF"...)
	u32(3)
	u64(2) // tensors
	u64(3) // metadata
	str("general.architecture")
	u32(8)
	str("llama")
	str("llama.context_length")
	u32(4)
	u32(2048)
	str("tokenizer.ggml.tokens")
	u32(9)
	u32(8)
	u64(3)
	for _, t := range []string{"<s>", "a", "b"} {
		str(t)
	}
	str("output_norm.weight")
	u32(1)
	u64(8)
	u32(0) // F32
	u64(0)
	str("blk.0.ffn_up.weight")
	u32(1)
	u64(32)
	u32(8) // Q8_0
	u64(32)
	for len(b)%32 != 0 {
		b = append(b, 0)
	}
	for i := 0; i < 8; i++ {
		b = binary.LittleEndian.AppendUint32(b, 0x3c23d70a) // 0.01
	}
	b = append(b, 0x00, 0x3c) // scale 1.0
	for i := 0; i < 32; i++ {
		b = append(b, byte(i))
	}
	for len(b)%32 != 0 {
		b = append(b, 0)
	}
	return b
}

// validGGUF reports whether b reads as GGUF without any problem.
func validGGUF(b []byte) bool {
	h, probs := formats.ReadGGUF("x.gguf", bytes.NewReader(b), int64(len(b)))
	return h != nil && len(probs) == 0
}

// ggufCases adds the malformed GGUF files: flipped header bytes, truncation at
// every region, absurd counts and lengths, wrong versions and magics, a NaN
// block scale, offsets that wrap.
func (g *gen) ggufCases() {
	good := ggufBase()
	h, _ := formats.ReadGGUF("x.gguf", bytes.NewReader(good), int64(len(good)))
	dataStart := int(h.DataStart)
	set := func(off int, v []byte) []byte { c := bytes.Clone(good); copy(c[off:], v); return c }
	le64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	for i := 0; i < dataStart; i += 5 {
		b := bytes.Clone(good)
		b[i] ^= 1 << (i % 8)
		if !validGGUF(b) {
			g.fileExt(fmt.Sprintf("gguf-flip-%03d", i), ".gguf", b, malformed)
		}
	}
	for _, cut := range []int{0, 3, 6, 12, 20, 30, 60, dataStart - 1, dataStart, dataStart + 16, dataStart + 40} {
		g.fileExt(fmt.Sprintf("gguf-truncated-at-%d", cut), ".gguf", good[:cut], malformed)
	}
	g.fileExt("gguf-tensor-count-huge", ".gguf", set(8, le64(1<<62)), malformed)
	g.fileExt("gguf-kv-count-max", ".gguf", set(16, le64(^uint64(0))), malformed)
	g.fileExt("gguf-key-length-huge", ".gguf", set(24, le64(1<<63)), malformed)
	g.fileExt("gguf-version-1", ".gguf", set(4, []byte{1, 0, 0, 0}), malformed)
	g.fileExt("gguf-big-endian", ".gguf", set(4, []byte{0, 0, 0, 3}), malformed)
	g.fileExt("gguf-draft-magic", ".gguf", set(0, []byte("FUGG")), malformed)
	g.fileExt("gguf-html", ".gguf", []byte("<!DOCTYPE html><html><body>404</body></html>"), malformed)
	i := bytes.Index(good, []byte("blk.0.ffn_up.weight")) + len("blk.0.ffn_up.weight")
	g.fileExt("gguf-dims-huge", ".gguf", set(i+4, le64(1<<62)), malformed)
	g.fileExt("gguf-type-unknown", ".gguf", set(i+12, []byte{43, 0, 0, 0}), malformed)
	g.fileExt("gguf-offset-wraps", ".gguf", set(i+16, le64(^uint64(31))), malformed)
	g.fileExt("gguf-offset-misaligned", ".gguf", set(i+16, le64(40)), malformed)
	j := bytes.Index(good, []byte("tokenizer.ggml.tokens")) + len("tokenizer.ggml.tokens")
	g.fileExt("gguf-array-length-huge", ".gguf", set(j+8, le64(1<<61)), malformed)
	g.fileExt("gguf-array-type-unknown", ".gguf", set(j+4, []byte{99, 0, 0, 0}), malformed)
}
