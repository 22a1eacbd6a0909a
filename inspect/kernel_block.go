package inspect

import (
	"math"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// statsBlock is the kernel for the ggml block types of GGUF files: whole
// blocks are dequantized (package ggml, exactly as ggml's C reference does)
// into float32, blockElems values at a time, widened and folded like any
// other float values; the blocks whose scale is non-finite are counted too.
// A trailing partial block is ignored. For a type whose values are not
// decoded (the grid IQ types, NVFP4) only the scales are checked: Count and
// Undecoded hold the elements, BadScales the blocks with a bad scale.
func statsBlock(dt formats.DType, raw []byte, vals *[blockElems]float64, f32 *[blockElems]float32) Acc {
	t, tr, _ := dt.Block()
	acc := NewAcc()
	blocks := len(raw) / tr.BlockBytes
	raw = raw[:blocks*tr.BlockBytes]
	bad := uint64(ggml.BadScales(t, raw))
	if !t.Decodes() {
		acc.Count = uint64(blocks * tr.BlockElems)
		acc.Undecoded = acc.Count
		acc.BadScales = bad
		return acc
	}
	per := blockElems / tr.BlockElems // blocks per pass (blockElems is a multiple of every block size)
	minNormal := dt.MinNormal()
	for i := 0; i < blocks; i += per {
		m := min(per, blocks-i)
		n := ggml.Dequantize(t, f32[:m*tr.BlockElems], raw[i*tr.BlockBytes:(i+m)*tr.BlockBytes])
		v := vals[:n]
		var b Acc
		if bad, tiny := widenF32(f32[:n], v); bad {
			b = foldBlock(v, minNormal)
		} else {
			b = finishBlock(v, tiny, minNormal)
		}
		acc.Merge(&b)
	}
	acc.BadScales = bad
	return acc
}

// widenF32 is decodeF32 for values already in float32: it widens f into v and
// says, from the exponent bits, whether any value is non-finite and whether
// any is zero or subnormal.
func widenF32(f []float32, v []float64) (nonFinite, tiny bool) {
	const expMask = 0x7F800000
	var hiFlag uint32
	loFlag := uint32(math.MaxUint32)
	v = v[:len(f)]
	for j, x := range f {
		e := math.Float32bits(x) & expMask
		hiFlag |= e + 0x00800000 // carries into bit 31 only from all ones
		loFlag &= e + expMask    // leaves bit 31 clear only from all zeros
		v[j] = float64(x)
	}
	return hiFlag&0x80000000 != 0, loFlag&0x80000000 == 0
}
