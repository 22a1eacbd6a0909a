package synth

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// GGUF describes a GGUF file to encode, valid or deliberately not: tests of
// the GGUF reader and of scanning quantized tensors build their files here.
type GGUF struct {
	Version   uint32 // 0 means 3
	KV        []KV   // metadata, in order (general.alignment is added when Alignment is set)
	Tensors   []GGUFTensor
	Alignment uint64 // 0: the default 32, no general.alignment key
	// TensorCount and KVCount, when non-zero, replace the true counts in the
	// header (absurd counts for hostile tests).
	TensorCount, KVCount uint64
}

// KV is one metadata pair. Value is a Go value of the GGUF type it is written
// as: uint8, int8, uint16, int16, uint32, int32, float32, bool, string,
// uint64, int64, float64, or a slice of one of those, or []any of slices
// (a nested array).
type KV struct {
	Key   string
	Value any
}

// GGUFTensor is one tensor: Shape in numpy order (the file stores it
// reversed), Data its exact bytes (nil: zeros of the right length).
type GGUFTensor struct {
	Name  string
	Type  ggml.Type
	Shape []uint64
	Data  []byte
	// Offset, when set, replaces the offset the encoder computes.
	Offset *uint64
}

// Bytes is the tensor's data length (0 when the shape is not whole blocks).
func (t GGUFTensor) Bytes() uint64 {
	n := uint64(1)
	for _, d := range t.Shape {
		n *= d
	}
	b, _ := t.Type.RowBytes(n)
	return b
}

// Encode returns the file's bytes: header, metadata, tensor infos, padding to
// the alignment, then each tensor's data padded to the alignment, the way
// llama.cpp's writer lays it out.
func (g *GGUF) Encode() []byte {
	align := g.Alignment
	kv := g.KV
	if align == 0 {
		align = 32
	} else {
		kv = append([]KV{{"general.alignment", uint32(align)}}, kv...)
	}
	var b []byte
	u32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	u64 := func(v uint64) { b = binary.LittleEndian.AppendUint64(b, v) }
	str := func(s string) { u64(uint64(len(s))); b = append(b, s...) }
	version := g.Version
	if version == 0 {
		version = 3
	}
	b = append(b, "GGUF"...)
	u32(version)
	tc, kc := uint64(len(g.Tensors)), uint64(len(kv))
	if g.TensorCount != 0 {
		tc = g.TensorCount
	}
	if g.KVCount != 0 {
		kc = g.KVCount
	}
	u64(tc)
	u64(kc)
	for _, p := range kv {
		str(p.Key)
		t, enc := ggufValue(p.Value)
		u32(uint32(t))
		b = enc(b)
	}
	var off uint64
	offs := make([]uint64, len(g.Tensors))
	for i, t := range g.Tensors {
		str(t.Name)
		u32(uint32(len(t.Shape)))
		for j := len(t.Shape) - 1; j >= 0; j-- {
			u64(t.Shape[j])
		}
		u32(uint32(t.Type))
		offs[i] = off
		if t.Offset != nil {
			u64(*t.Offset)
		} else {
			u64(off)
		}
		n := t.Bytes()
		off += n + (align-n%align)%align
	}
	for uint64(len(b))%align != 0 {
		b = append(b, 0)
	}
	start := uint64(len(b))
	for i, t := range g.Tensors {
		for uint64(len(b)) < start+offs[i] {
			b = append(b, 0)
		}
		d := t.Data
		if d == nil {
			d = make([]byte, t.Bytes())
		}
		b = append(b, d...)
	}
	for uint64(len(b))%align != 0 {
		b = append(b, 0)
	}
	return b
}

// ggufValue returns a value's GGUF type and its encoder.
func ggufValue(v any) (formats.GGUFValueType, func([]byte) []byte) {
	le := binary.LittleEndian
	switch x := v.(type) {
	case uint8:
		return formats.GGUFUint8, func(b []byte) []byte { return append(b, x) }
	case int8:
		return formats.GGUFInt8, func(b []byte) []byte { return append(b, byte(x)) }
	case uint16:
		return formats.GGUFUint16, func(b []byte) []byte { return le.AppendUint16(b, x) }
	case int16:
		return formats.GGUFInt16, func(b []byte) []byte { return le.AppendUint16(b, uint16(x)) }
	case uint32:
		return formats.GGUFUint32, func(b []byte) []byte { return le.AppendUint32(b, x) }
	case int32:
		return formats.GGUFInt32, func(b []byte) []byte { return le.AppendUint32(b, uint32(x)) }
	case float32:
		return formats.GGUFFloat32, func(b []byte) []byte { return le.AppendUint32(b, math.Float32bits(x)) }
	case bool:
		return formats.GGUFBool, func(b []byte) []byte {
			if x {
				return append(b, 1)
			}
			return append(b, 0)
		}
	case string:
		return formats.GGUFString, func(b []byte) []byte { return append(le.AppendUint64(b, uint64(len(x))), x...) }
	case uint64:
		return formats.GGUFUint64, func(b []byte) []byte { return le.AppendUint64(b, x) }
	case int64:
		return formats.GGUFInt64, func(b []byte) []byte { return le.AppendUint64(b, uint64(x)) }
	case float64:
		return formats.GGUFFloat64, func(b []byte) []byte { return le.AppendUint64(b, math.Float64bits(x)) }
	case []string:
		return ggufArray(len(x), formats.GGUFString, func(i int) any { return x[i] })
	case []int32:
		return ggufArray(len(x), formats.GGUFInt32, func(i int) any { return x[i] })
	case []uint32:
		return ggufArray(len(x), formats.GGUFUint32, func(i int) any { return x[i] })
	case []float32:
		return ggufArray(len(x), formats.GGUFFloat32, func(i int) any { return x[i] })
	case []uint8:
		return ggufArray(len(x), formats.GGUFUint8, func(i int) any { return x[i] })
	case []any:
		return ggufArray(len(x), formats.GGUFArray, func(i int) any { return x[i] })
	}
	panic(fmt.Sprintf("synth: no GGUF encoding for %T", v))
}

func ggufArray(n int, elem formats.GGUFValueType, at func(int) any) (formats.GGUFValueType, func([]byte) []byte) {
	return formats.GGUFArray, func(b []byte) []byte {
		b = binary.LittleEndian.AppendUint32(b, uint32(elem))
		b = binary.LittleEndian.AppendUint64(b, uint64(n))
		for i := range n {
			_, enc := ggufValue(at(i))
			if elem == formats.GGUFArray {
				t, _ := ggufValue(at(i)) // a nested array: element type, count, elements
				if t != formats.GGUFArray {
					panic("synth: a nested GGUF array must hold only arrays")
				}
			}
			b = enc(b)
		}
		return b
	}
}

// QuantBlocks returns n random blocks of a block type whose scales are all
// finite (fp16 1/64 for every d, dmin and m; 1/64 for Q8_K's float32 d) and
// whose other bytes are random: values any dequantizer turns into finite
// numbers.
func QuantBlocks(t ggml.Type, n int, seed uint64) []byte {
	tr, _ := t.Traits()
	b := make([]byte, n*tr.BlockBytes)
	r := &rng{s: splitmix64(seed) | 1}
	for i := range b {
		b[i] = byte(r.next())
	}
	for i := 0; i < n; i++ {
		blk := b[i*tr.BlockBytes : (i+1)*tr.BlockBytes]
		switch {
		case t == ggml.MXFP4:
			blk[0] = 122
		case tr.ScaleF32:
			binary.LittleEndian.PutUint32(blk, math.Float32bits(1.0/64))
		default:
			for _, o := range tr.Scales {
				binary.LittleEndian.PutUint16(blk[o:], 0x2400) // 1/64
			}
		}
	}
	return b
}

// SetBlockScale overwrites the first scale (d) of block i of a block type's
// data with the fp16 pattern h (Q8_K: h widened to float32).
func SetBlockScale(t ggml.Type, data []byte, i int, h uint16) {
	tr, _ := t.Traits()
	blk := data[i*tr.BlockBytes:]
	if tr.ScaleF32 {
		binary.LittleEndian.PutUint32(blk, math.Float32bits(ggml.F16ToF32(h)))
		return
	}
	binary.LittleEndian.PutUint16(blk[tr.Scales[0]:], h)
}
