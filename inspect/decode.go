package inspect

import (
	"encoding/binary"
	"math"
	"sync"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
	"github.com/x448/float16"
)

// f16Table maps every IEEE binary16 bit pattern to its float32 value. It is
// built once from x448/float16 (exact on all 65536 inputs) because a table
// lookup is about six times faster than converting each element.
var f16Table = sync.OnceValue(func() *[65536]float32 {
	var t [65536]float32
	for i := range t {
		t[i] = float16.Frombits(uint16(i)).Float32()
	}
	return &t
})

// decodeBlocks dequantizes the whole blocks of raw (a ggml block type) that
// fit in dst, a few at a time through a float32 buffer; 0 for the types whose
// values are not decoded.
func decodeBlocks(dt formats.DType, raw []byte, dst []float64) int {
	t, tr, _ := dt.Block()
	if !t.Decodes() {
		return 0
	}
	var f [blockElems]float32
	per := blockElems / tr.BlockElems
	n := 0
	for len(raw) >= tr.BlockBytes && len(dst)-n >= tr.BlockElems {
		m := min(per, len(raw)/tr.BlockBytes, (len(dst)-n)/tr.BlockElems)
		k := ggml.Dequantize(t, f[:m*tr.BlockElems], raw[:m*tr.BlockBytes])
		for j, v := range f[:k] {
			dst[n+j] = float64(v)
		}
		n += k
		raw = raw[m*tr.BlockBytes:]
	}
	return n
}

// DecodeFloat64 decodes raw little-endian tensor data of dtype dt into dst and
// returns how many elements it wrote: the smaller of the elements raw holds and
// len(dst). Every dtype is accepted (a ggml block type by whole blocks, as
// ggml dequantizes them; nothing for the grid IQ types); integers and bools are
// converted exactly where float64 can hold them, a complex dtype yields the real
// and imaginary parts of its elements as consecutive values (so n counts parts),
// and sub-byte types are unpacked least-significant bits
// first. raw need not be aligned.
func DecodeFloat64(dt formats.DType, raw []byte, dst []float64) int {
	if dt.IsBlock() {
		return decodeBlocks(dt, raw, dst)
	}
	if !dt.Valid() {
		return 0
	}
	n := min(partCount(dt, len(raw)), len(dst))
	dst = dst[:n]
	switch dt {
	case formats.BF16:
		for i := range dst {
			dst[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16))
		}
	case formats.F16:
		t := f16Table()
		for i := range dst {
			dst[i] = float64(t[binary.LittleEndian.Uint16(raw[2*i:])])
		}
	case formats.F32, formats.C64:
		for i := range dst {
			dst[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	case formats.F64, formats.C128:
		for i := range dst {
			dst[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	case formats.BOOL, formats.U8:
		for i := range dst {
			dst[i] = float64(raw[i])
		}
	case formats.I8:
		for i := range dst {
			dst[i] = float64(int8(raw[i]))
		}
	case formats.I16:
		for i := range dst {
			dst[i] = float64(int16(binary.LittleEndian.Uint16(raw[2*i:])))
		}
	case formats.U16:
		for i := range dst {
			dst[i] = float64(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case formats.I32:
		for i := range dst {
			dst[i] = float64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	case formats.U32:
		for i := range dst {
			dst[i] = float64(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case formats.I64:
		for i := range dst {
			dst[i] = float64(int64(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	case formats.U64:
		for i := range dst {
			dst[i] = float64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	default: // the 8-bit floats and the sub-byte types
		for i := range dst {
			dst[i] = formats.Element(dt, raw, i)
		}
	}
	return n
}
