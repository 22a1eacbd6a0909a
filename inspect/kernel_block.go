package inspect

import (
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
		for j := range v {
			v[j] = float64(f32[j])
		}
		b := foldBlock(v, minNormal)
		acc.Merge(&b)
	}
	acc.BadScales = bad
	return acc
}
