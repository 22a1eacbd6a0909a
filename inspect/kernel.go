package inspect

import (
	"sync"

	"github.com/ckpt-tool/ckpt/formats"
)

// Stats computes the statistics of raw little-endian tensor data of dtype dt
// with the fast kernel for that dtype. It agrees with ReferenceStats exactly on
// every count, on Min, Max, AbsMax and FirstBad, and to within rounding on
// Mean, M2 and SumSq: far below 1e-9 relative, except where the vector
// kernels' narrow loops fold BF16, F16 and F32 (and C64) with float32 sums
// (the bounds are proven in kernel_simd.go: SumSq within 5.4e-7 relative,
// M2 within 1.7e-6, Mean within 5.8e-7 of the standard deviation; for F32
// 3.6e-7, 1.1e-6 and 3.9e-7). raw need not be aligned; a
// trailing partial element is ignored, as ReferenceStats does.
func Stats(dt formats.DType, raw []byte) Acc {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	return sc.stats(dt, raw)
}

// scratch is the reusable memory of one worker: histograms for the 8- and
// 16-bit kernels and a block of decoded values for the generic one.
type scratch struct {
	h16 *[65536]uint32
	nz  []uint16 // occupied bins of h16, gathered by the reduction
	// the finite values of the occupied bins and their counts
	vals16, cnts16 []float64
	h8             [256]uint32
	vals           [blockElems]float64
	ggml           ggmlScratch // dequantized ggml blocks (kernel_block.go)
	// the lanes of the vector kernels
	lanes16 simdLanes
	lanes32 simdLanes32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// hist16MinElems is the chunk length from which the 16-bit histogram kernel
// beats decoding element by element: below it, clearing and reducing 65536
// bins costs more than the decoding it saves.
const hist16MinElems = 16 << 10

// maxKernelElems bounds one histogram pass so that a uint32 bin cannot
// overflow whatever the caller hands in.
const maxKernelElems = 1 << 30

// stats dispatches raw data of dt to its kernel.
func (sc *scratch) stats(dt formats.DType, raw []byte) Acc {
	if dt.Kind() == formats.KindComplex && dt.Valid() {
		return sc.statsComplex(dt, raw)
	}
	if acc, ok := statsSIMD(dt, raw, sc); ok {
		return acc
	}
	switch dt {
	case formats.BF16, formats.F16, formats.I16, formats.U16:
		n := len(raw) / 2
		if n < hist16MinElems {
			return statsGeneric(dt, raw, &sc.vals)
		}
		acc := NewAcc()
		for len(raw) >= 2 {
			m := min(len(raw)/2, maxKernelElems)
			a := sc.hist16Stats(dt, raw[:2*m])
			acc.Merge(&a)
			raw = raw[2*m:]
		}
		return acc
	case formats.BOOL, formats.U8, formats.I8, formats.F8_E5M2, formats.F8_E4M3,
		formats.F8_E8M0, formats.F8_E4M3FNUZ, formats.F8_E5M2FNUZ:
		acc := NewAcc()
		for len(raw) > 0 {
			m := min(len(raw), maxKernelElems)
			a := sc.hist8Stats(dt, raw[:m])
			acc.Merge(&a)
			raw = raw[m:]
		}
		return acc
	case formats.F32:
		return statsF32(raw, &sc.vals)
	case formats.F64:
		return statsF64(raw, &sc.vals)
	}
	if dt.IsBlock() {
		sc.ggml.sc = sc
		return sc.ggml.statsBlock(dt, raw, &sc.vals)
	}
	if !dt.Valid() {
		return NewAcc()
	}
	return statsGeneric(dt, raw, &sc.vals)
}
