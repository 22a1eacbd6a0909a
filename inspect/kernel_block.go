package inspect

import (
	"math"
	"unsafe"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// statsBlock is the kernel for the ggml block types of GGUF files. Whole
// blocks are taken a pass of up to ggmlPassElems values at a time: a pass of a
// type whose values are a scale times a small integer goes to its integer
// kernel (kernel_ggml.go), which folds the quants without dequantizing them;
// any other pass (another type, or a block with a non-finite scale) is
// dequantized (package ggml, exactly as ggml's C reference does) into
// float32 and folded by the F32 kernel, as an F32 tensor would be. The blocks
// whose scale is non-finite are counted too, in the dequantized passes (an
// integer kernel takes no pass with one). A trailing partial block is
// ignored. For a type whose values are not decoded (the grid IQ types, NVFP4)
// only the scales are checked: Count and Undecoded hold the elements,
// BadScales the blocks with a bad scale.
func (g *ggmlScratch) statsBlock(dt formats.DType, raw []byte, vals *[blockElems]float64) Acc {
	t, tr, _ := dt.Block()
	acc := NewAcc()
	blocks := len(raw) / tr.BlockBytes
	raw = raw[:blocks*tr.BlockBytes]
	if !t.Decodes() {
		acc.Count = uint64(blocks * tr.BlockElems)
		acc.Undecoded = acc.Count
		acc.BadScales = uint64(ggml.BadScales(t, raw))
		return acc
	}
	per := ggmlPassElems / tr.BlockElems // blocks per pass (a multiple of every block size)
	intKernel := ggmlIntKernels[t]
	var bad uint64
	for i := 0; i < blocks; i += per {
		m := min(per, blocks-i)
		src := raw[i*tr.BlockBytes : (i+m)*tr.BlockBytes]
		var b Acc
		ok := false
		if intKernel != nil {
			// A pass the integer kernel takes has every scale finite.
			b, ok = intKernel(src)
		}
		if !ok {
			b = g.dequantStats(dt, t, src, vals)
			bad += uint64(ggml.BadScales(t, src))
		}
		acc.Merge(&b)
	}
	acc.BadScales = bad
	return acc
}

// ggmlPassElems is how many values one pass of statsBlock holds: 32 KiB of
// float32, still in the L1 or L2 cache when the F32 kernel reads them back.
const ggmlPassElems = 8 << 10

// ggmlScratch is a worker's buffer for dequantized values.
type ggmlScratch struct {
	f32 [ggmlPassElems]float32
	sc  *scratch // the worker's scratch whose vector lanes fold the values (nil: lanes of their own)
}

// dequantStats dequantizes the whole blocks of src (type t, at most
// ggmlPassElems values) and folds the values as F32 data: through the vector
// kernel where this CPU has one, otherwise widened and folded block by block.
func (g *ggmlScratch) dequantStats(dt formats.DType, t ggml.Type, src []byte, vals *[blockElems]float64) Acc {
	n := ggml.Dequantize(t, g.f32[:], src)
	f := g.f32[:n]
	if n > 0 && simdHandles(formats.F32) {
		// The vector kernels run on little-endian x86-64 only, where the
		// float32 values in memory are F32 data; the float64 loops alone,
		// which keep the sums of decoded types within 1e-9.
		if acc, ok := statsF32Wide(unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*n), g.sc); ok {
			return acc
		}
	}
	return foldF32(f, dt.MinNormal(), vals)
}

// foldF32 folds float32 values blockElems at a time, widened into vals.
func foldF32(f []float32, minNormal float64, vals *[blockElems]float64) Acc {
	acc := NewAcc()
	for i := 0; i < len(f); i += blockElems {
		m := min(blockElems, len(f)-i)
		v := vals[:m]
		var b Acc
		if bad, tiny := widenF32(f[i:i+m], v); bad {
			b = foldBlock(v, minNormal)
		} else {
			b = finishBlock(v, tiny, minNormal)
		}
		acc.Merge(&b)
	}
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
