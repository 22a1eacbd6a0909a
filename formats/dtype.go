package formats

import (
	"math"
	"slices"

	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// DType is an element type, spelled as in a safetensors header ("BF16",
// "F8_E4M3", ...). Besides the 22 safetensors dtypes it names C128, which other
// containers (PyTorch) hold and safetensors does not.
type DType string

// The 22 dtypes of the reference implementation, in the reference's enum order
// (which is also the order its writer sorts by, descending).
const (
	BOOL        DType = "BOOL"
	F4          DType = "F4"
	F6_E2M3     DType = "F6_E2M3"
	F6_E3M2     DType = "F6_E3M2"
	U8          DType = "U8"
	I8          DType = "I8"
	F8_E5M2     DType = "F8_E5M2"
	F8_E4M3     DType = "F8_E4M3"
	F8_E8M0     DType = "F8_E8M0"
	F8_E4M3FNUZ DType = "F8_E4M3FNUZ"
	F8_E5M2FNUZ DType = "F8_E5M2FNUZ"
	I16         DType = "I16"
	U16         DType = "U16"
	F16         DType = "F16"
	BF16        DType = "BF16"
	I32         DType = "I32"
	U32         DType = "U32"
	F32         DType = "F32"
	C64         DType = "C64"
	F64         DType = "F64"
	I64         DType = "I64"
	U64         DType = "U64"
)

// C128 is a complex number as a pair of F64 (real, imaginary): torch's
// complex128. It is not a safetensors dtype: a safetensors header naming it is
// refused as an unknown dtype, and the safetensors writer does not write it.
const C128 DType = "C128"

// Kind groups dtypes by how their values are interpreted.
type Kind int

const (
	KindFloat    Kind = iota // IEEE-like or OCP minifloat
	KindSigned               // two's-complement integer
	KindUnsigned             // unsigned integer
	KindBool                 // one byte, 0 or 1
	KindComplex              // pair of floats (real, imaginary): F32 for C64, F64 for C128
	KindBlock                // a ggml block-quantized type (GGUF only), see Block
)

type dtypeInfo struct {
	// rank is the position in the safetensors reference enum, or
	// notSafetensors for a dtype other containers hold and safetensors does
	// not define (C128).
	rank int
	bits int
	kind Kind
}

// notSafetensors is the rank of a dtype that is not a safetensors dtype.
const notSafetensors = -1

var dtypes = map[DType]dtypeInfo{
	BOOL: {0, 8, KindBool}, F4: {1, 4, KindFloat}, F6_E2M3: {2, 6, KindFloat},
	F6_E3M2: {3, 6, KindFloat}, U8: {4, 8, KindUnsigned}, I8: {5, 8, KindSigned},
	F8_E5M2: {6, 8, KindFloat}, F8_E4M3: {7, 8, KindFloat}, F8_E8M0: {8, 8, KindFloat},
	F8_E4M3FNUZ: {9, 8, KindFloat}, F8_E5M2FNUZ: {10, 8, KindFloat},
	I16: {11, 16, KindSigned}, U16: {12, 16, KindUnsigned}, F16: {13, 16, KindFloat},
	BF16: {14, 16, KindFloat}, I32: {15, 32, KindSigned}, U32: {16, 32, KindUnsigned},
	F32: {17, 32, KindFloat}, C64: {18, 64, KindComplex}, F64: {19, 64, KindFloat},
	I64: {20, 64, KindSigned}, U64: {21, 64, KindUnsigned},
	C128: {notSafetensors, 128, KindComplex},
}

// AllDTypes lists the 22 safetensors dtypes in the reference enum order.
func AllDTypes() []DType {
	out := make([]DType, 0, len(dtypes))
	for d, info := range dtypes {
		if info.rank != notSafetensors {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b DType) int { return dtypes[a].rank - dtypes[b].rank })
	return out
}

// KnownDTypes lists every dtype ckpt reads: the 22 safetensors dtypes in the
// reference enum order, then those only other containers hold (C128).
func KnownDTypes() []DType { return append(AllDTypes(), C128) }

// Valid reports whether d is a dtype ckpt knows, safetensors or not (C128).
// Code reading or writing a safetensors header asks InSafetensors.
func (d DType) Valid() bool { _, ok := dtypes[d]; return ok }

// InSafetensors reports whether d is one of the 22 dtypes a safetensors header
// may name.
func (d DType) InSafetensors() bool { info, ok := dtypes[d]; return ok && info.rank != notSafetensors }

// blockDTypes maps the name of every ggml block-quantized type ("Q4_K") to its
// ggml type; GGUF tensors of those types get that name as their DType.
var blockDTypes = func() map[DType]ggml.Type {
	m := map[DType]ggml.Type{}
	for _, t := range ggml.Types() {
		if t.Blocked() {
			m[DType(t.String())] = t
		}
	}
	return m
}()

// Block returns the ggml type and traits of a block-quantized dtype; ok is
// false for every other dtype.
func (d DType) Block() (t ggml.Type, tr ggml.Traits, ok bool) {
	t, ok = blockDTypes[d]
	if ok {
		tr, _ = t.Traits()
	}
	return t, tr, ok
}

// IsBlock reports whether d is a ggml block-quantized type.
func (d DType) IsBlock() bool { _, ok := blockDTypes[d]; return ok }

// Known reports whether d is a dtype some reader of this package can produce:
// Valid, or a ggml block type.
func (d DType) Known() bool { return d.Valid() || d.IsBlock() }

// DTypeOfGGML is the DType of a GGUF tensor of ggml type t: the safetensors
// dtype of the same encoding for the plain types (F32, F16, BF16, F64,
// I8–I64), the type's own name for block types.
func DTypeOfGGML(t ggml.Type) (DType, bool) {
	switch t {
	case ggml.F32:
		return F32, true
	case ggml.F16:
		return F16, true
	case ggml.BF16:
		return BF16, true
	case ggml.F64:
		return F64, true
	case ggml.I8:
		return I8, true
	case ggml.I16:
		return I16, true
	case ggml.I32:
		return I32, true
	case ggml.I64:
		return I64, true
	}
	if t.Known() {
		return DType(t.String()), true
	}
	return "", false
}

// GGML is the ggml type of d, when GGUF can hold it.
func (d DType) GGML() (ggml.Type, bool) {
	if t, ok := blockDTypes[d]; ok {
		return t, true
	}
	switch d {
	case F32:
		return ggml.F32, true
	case F16:
		return ggml.F16, true
	case BF16:
		return ggml.BF16, true
	case F64:
		return ggml.F64, true
	case I8:
		return ggml.I8, true
	case I16:
		return ggml.I16, true
	case I32:
		return ggml.I32, true
	case I64:
		return ggml.I64, true
	}
	return 0, false
}

// Bits is the width of one element in bits (4 for F4, 6 for the F6 types).
func (d DType) Bits() int { return dtypes[d].bits }

// Kind says how the elements are interpreted.
func (d DType) Kind() Kind {
	if d.IsBlock() {
		return KindBlock
	}
	return dtypes[d].kind
}

// IsFloat reports whether the dtype holds floating-point values (complex counts:
// its two parts are floats).
func (d DType) IsFloat() bool {
	k := d.Kind()
	return d.Valid() && (k == KindFloat || k == KindComplex)
}

// Part is the dtype of one part of a complex dtype (F32 for C64, F64 for C128)
// and d itself for every other dtype.
func (d DType) Part() DType {
	switch d {
	case C64:
		return F32
	case C128:
		return F64
	}
	return d
}

// ByteAligned reports whether each element occupies whole bytes.
func (d DType) ByteAligned() bool { return d.Bits()%8 == 0 }

// Size is the width of one element in bytes, or 0 for the sub-byte types.
func (d DType) Size() int {
	if !d.ByteAligned() {
		return 0
	}
	return d.Bits() / 8
}

// writerRank orders dtypes as the reference writer does (it sorts descending by it).
func (d DType) writerRank() int { return dtypes[d].rank }

// MaxFinite is the largest finite magnitude the dtype can represent (+Inf for
// integer and bool dtypes, where the question does not arise).
func (d DType) MaxFinite() float64 {
	switch d {
	case F16:
		return 65504
	case BF16:
		return float64(math.Float32frombits(0x7F7F0000))
	case F32, C64:
		return math.MaxFloat32
	case F64, C128:
		return math.MaxFloat64
	case F8_E4M3:
		return 448
	case F8_E5M2:
		return 57344
	case F8_E4M3FNUZ:
		return 240
	case F8_E5M2FNUZ:
		return 57344
	case F8_E8M0:
		return math.Ldexp(1, 127)
	case F4:
		return 6
	case F6_E2M3:
		return 7.5
	case F6_E3M2:
		return 28
	}
	return math.Inf(1)
}

// MinNormal is the smallest positive normal magnitude of a float dtype; nonzero
// magnitudes below it are subnormal. 0 for dtypes without subnormals (F8_E8M0,
// integers).
func (d DType) MinNormal() float64 {
	switch d {
	case F16, F8_E5M2:
		return math.Ldexp(1, -14)
	case BF16, F32, C64:
		return math.Ldexp(1, -126)
	}
	if d.IsBlock() { // dequantized to float32
		return math.Ldexp(1, -126)
	}
	switch d {
	case F64, C128:
		return math.Ldexp(1, -1022)
	case F8_E4M3:
		return math.Ldexp(1, -6)
	case F8_E4M3FNUZ:
		return math.Ldexp(1, -7)
	case F8_E5M2FNUZ:
		return math.Ldexp(1, -15)
	case F4, F6_E2M3:
		return 1
	case F6_E3M2:
		return 0.25
	}
	return 0
}
