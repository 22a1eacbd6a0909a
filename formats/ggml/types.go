// Package ggml owns the element types of ggml, the tensor library behind
// llama.cpp and the GGUF file format: the type table (type id, name, elements
// per block, bytes per block) and the dequantizers that turn the bytes of a
// block into float32 values exactly as ggml's reference C code does
// (dequantize_row_* in ggml/src/ggml-quants.c: float32 arithmetic, the same
// operations in the same order, fp16 widened exactly).
//
// Every block type that is decoded has two implementations: a plain reference
// (ref.go, a line-by-line transcription of the C semantics) and a fast one
// (fast.go, table-driven where it pays); tests hold them equal bit for bit on
// random blocks, including NaN, infinite and subnormal scales.
//
// The grid-based IQ types (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS,
// IQ3_S) and NVFP4 are not decoded: their values come from lattice tables
// this package does not carry. For them only the block scales are checked
// (BadScales); Decodes reports false. The package imports nothing of the
// project.
package ggml

import "fmt"

// Type is a ggml type id as stored in a GGUF tensor info.
type Type uint32

// The ggml type ids (ggml/include/ggml.h, enum ggml_type). 4 and 5 (Q4_2,
// Q4_3), 31–33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) and 36–38 (IQ4_NL_4_4, …) were
// removed from GGUF files and are not valid here.
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
	NVFP4   Type = 40
	Q1_0    Type = 41
	Q2_0    Type = 42
)

// Traits describe the storage of one type: BlockElems values are stored in
// BlockBytes bytes (1 value per block for the plain types).
type Traits struct {
	Name       string
	BlockElems int
	BlockBytes int
	// Scales are the byte offsets, within a block, of its fp16 scales (d,
	// dmin, m); Q8_K has one float32 scale (ScaleF32). IQ1_M assembles its
	// fp16 scale from four nibbles (handled by BadScales).
	Scales   []int
	ScaleF32 bool
}

// QK_K is the number of values in a K-quant super-block.
const QK_K = 256

// table is ggml's type_traits (ggml/src/ggml.c) for the types a GGUF file may
// hold: the block sizes are sizeof(block_*) of ggml/src/ggml-common.h, which
// asserts each one statically.
var table = map[Type]Traits{
	F32:     {"F32", 1, 4, nil, false},
	F16:     {"F16", 1, 2, nil, false},
	Q4_0:    {"Q4_0", 32, 18, []int{0}, false},
	Q4_1:    {"Q4_1", 32, 20, []int{0, 2}, false},
	Q5_0:    {"Q5_0", 32, 22, []int{0}, false},
	Q5_1:    {"Q5_1", 32, 24, []int{0, 2}, false},
	Q8_0:    {"Q8_0", 32, 34, []int{0}, false},
	Q8_1:    {"Q8_1", 32, 36, []int{0, 2}, false},
	Q2_K:    {"Q2_K", QK_K, 84, []int{80, 82}, false},
	Q3_K:    {"Q3_K", QK_K, 110, []int{108}, false},
	Q4_K:    {"Q4_K", QK_K, 144, []int{0, 2}, false},
	Q5_K:    {"Q5_K", QK_K, 176, []int{0, 2}, false},
	Q6_K:    {"Q6_K", QK_K, 210, []int{208}, false},
	Q8_K:    {"Q8_K", QK_K, 292, []int{0}, true},
	IQ2_XXS: {"IQ2_XXS", QK_K, 66, []int{0}, false},
	IQ2_XS:  {"IQ2_XS", QK_K, 74, []int{0}, false},
	IQ3_XXS: {"IQ3_XXS", QK_K, 98, []int{0}, false},
	IQ1_S:   {"IQ1_S", QK_K, 50, []int{0}, false},
	IQ4_NL:  {"IQ4_NL", 32, 18, []int{0}, false},
	IQ3_S:   {"IQ3_S", QK_K, 110, []int{0}, false},
	IQ2_S:   {"IQ2_S", QK_K, 82, []int{0}, false},
	IQ4_XS:  {"IQ4_XS", QK_K, 136, []int{0}, false},
	I8:      {"I8", 1, 1, nil, false},
	I16:     {"I16", 1, 2, nil, false},
	I32:     {"I32", 1, 4, nil, false},
	I64:     {"I64", 1, 8, nil, false},
	F64:     {"F64", 1, 8, nil, false},
	IQ1_M:   {"IQ1_M", QK_K, 56, nil, false},
	BF16:    {"BF16", 1, 2, nil, false},
	TQ1_0:   {"TQ1_0", QK_K, 54, []int{52}, false},
	TQ2_0:   {"TQ2_0", QK_K, 66, []int{64}, false},
	MXFP4:   {"MXFP4", 32, 17, nil, false},
	NVFP4:   {"NVFP4", 64, 36, nil, false},
	Q1_0:    {"Q1_0", 128, 18, []int{0}, false},
	Q2_0:    {"Q2_0", 64, 18, []int{0}, false},
}

// removed names the ids ggml assigned once and later removed from GGUF.
var removed = map[Type]string{
	4: "Q4_2", 5: "Q4_3", 31: "Q4_0_4_4", 32: "Q4_0_4_8", 33: "Q4_0_8_8",
	36: "IQ4_NL_4_4", 37: "IQ4_NL_4_8", 38: "IQ4_NL_8_8",
}

var byName = func() map[string]Type {
	m := make(map[string]Type, len(table))
	for t, tr := range table {
		m[tr.Name] = t
	}
	return m
}()

// Lookup returns the traits of t; ok is false for an unknown or removed id.
func (t Type) Traits() (Traits, bool) {
	tr, ok := table[t]
	return tr, ok
}

// Known reports whether t is a type a GGUF file may hold.
func (t Type) Known() bool { _, ok := table[t]; return ok }

// String is the type's name ("Q4_K"), or a description of an unknown id.
func (t Type) String() string {
	if tr, ok := table[t]; ok {
		return tr.Name
	}
	if n, ok := removed[t]; ok {
		return fmt.Sprintf("%s (type %d, removed from GGUF)", n, uint32(t))
	}
	return fmt.Sprintf("unknown type %d", uint32(t))
}

// Removed returns the name of an id ggml once used and removed from GGUF.
func Removed(t Type) (string, bool) { n, ok := removed[t]; return n, ok }

// ByName returns the type named name ("Q4_K"), as String spells it.
func ByName(name string) (Type, bool) { t, ok := byName[name]; return t, ok }

// Types lists every known type in id order.
func Types() []Type {
	var out []Type
	for t := Type(0); t < 64; t++ {
		if t.Known() {
			out = append(out, t)
		}
	}
	return out
}

// Blocked reports whether t stores several values per block (a quantized type).
func (t Type) Blocked() bool { return table[t].BlockElems > 1 }

// Decodes reports whether Dequantize produces t's values. It is false for the
// grid-based IQ types and NVFP4, whose blocks are checked only by BadScales.
func (t Type) Decodes() bool {
	_, ok := fast[t]
	return ok
}

// RowBytes is the byte length of n values of t, or false when n is not a
// whole number of blocks or the length overflows int64.
func (t Type) RowBytes(n uint64) (uint64, bool) {
	tr, ok := table[t]
	if !ok || n%uint64(tr.BlockElems) != 0 {
		return 0, false
	}
	blocks := n / uint64(tr.BlockElems)
	if blocks > (1<<63-1)/uint64(tr.BlockBytes) {
		return 0, false
	}
	return blocks * uint64(tr.BlockBytes), true
}
