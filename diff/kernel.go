package diff

import (
	"math"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// compareValues folds the element-wise comparison of equally long runs of
// decoded values into s. Sums are taken per call in local float64 partials
// (callers pass blocks of a few thousand values) and then added to s, so long
// tensors lose no precision.
func compareValues(a, b []float64, s *Stats) {
	b = b[:len(a)]
	var ssa, ssb, ssd, dot, maxAbs float64
	var pairs, differ, appeared, disappeared, nfa, nfb uint64
	for i, x := range a {
		y := b[i]
		fx := !math.IsNaN(x) && !math.IsInf(x, 0)
		fy := !math.IsNaN(y) && !math.IsInf(y, 0)
		if fx && fy {
			pairs++
			d := y - x
			ssa += x * x
			ssb += y * y
			ssd += d * d
			dot += x * y
			if d != 0 {
				differ++
				maxAbs = math.Max(maxAbs, math.Abs(d))
			}
			continue
		}
		if !fx {
			nfa++
		}
		if !fy {
			nfb++
		}
		switch {
		case fx: // and not fy
			appeared++
			differ++
		case fy:
			disappeared++
			differ++
		case formats.Classify(x) != formats.Classify(y):
			differ++
		}
	}
	s.Merge(&Stats{Pairs: pairs, SumSqA: ssa, SumSqB: ssb, SumSqD: ssd, Dot: dot, MaxAbs: maxAbs,
		Differ: differ, Appeared: appeared, Disappeared: disappeared, NonFiniteA: nfa, NonFiniteB: nfb})
}

// selfStats is compareValues(a, a): the statistics of a run compared with
// itself, for byte-identical chunks whose norms an aggregate needs.
func selfStats(a []float64, s *Stats) {
	var ss float64
	var pairs, nf uint64
	for _, x := range a {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			nf++
			continue
		}
		pairs++
		ss += x * x
	}
	s.Merge(&Stats{Pairs: pairs, SumSqA: ss, SumSqB: ss, Dot: ss, NonFiniteA: nf, NonFiniteB: nf})
}

// ReferenceCompare compares two whole tensors the plain way: every element
// decoded by formats.Element (a block type by ggml's reference dequantizer), one at a time, summed in one pass. It is the
// twin the chunked parallel engine is tested against; it is slow on purpose.
// a and b must hold the same number of scalars (see scalars).
func ReferenceCompare(dtA formats.DType, a []byte, dtB formats.DType, b []byte) Stats {
	var s Stats
	n := scalarsIn(dtA, len(a))
	elemA, elemB := referenceElements(dtA, a), referenceElements(dtB, b)
	for i := 0; i < n; i++ {
		x, y := elemA(i), elemB(i)
		cx, cy := formats.Classify(x), formats.Classify(y)
		if cx != formats.ClassFinite {
			s.NonFiniteA++
		}
		if cy != formats.ClassFinite {
			s.NonFiniteB++
		}
		switch {
		case cx == formats.ClassFinite && cy == formats.ClassFinite:
			s.Pairs++
			s.SumSqA += x * x
			s.SumSqB += y * y
			s.SumSqD += (y - x) * (y - x)
			s.Dot += x * y
			if x != y {
				s.Differ++
				s.MaxAbs = math.Max(s.MaxAbs, math.Abs(y-x))
			}
		case cx == formats.ClassFinite:
			s.Appeared++
			s.Differ++
		case cy == formats.ClassFinite:
			s.Disappeared++
			s.Differ++
		case cx != cy:
			s.Differ++
		}
	}
	return s
}

// referenceElements returns element i of data: formats.Element, or for a
// ggml block type the value ggml's reference dequantizer gives it.
func referenceElements(dt formats.DType, data []byte) func(int) float64 {
	if t, tr, ok := dt.Block(); ok {
		vals := make([]float32, len(data)/tr.BlockBytes*tr.BlockElems)
		ggml.DequantizeRef(t, vals, data)
		return func(i int) float64 { return float64(vals[i]) }
	}
	return func(i int) float64 { return formats.Element(dt, data, i) }
}

// scalarsIn is how many decoded values raw data of a dtype holds (a complex
// dtype counts its real and imaginary parts, a ggml block type its whole
// blocks' values), as inspect.DecodeFloat64 counts them.
func scalarsIn(dt formats.DType, nbytes int) int {
	if _, tr, ok := dt.Block(); ok {
		return nbytes / tr.BlockBytes * tr.BlockElems
	}
	return nbytes * 8 / scalarBits(dt)
}

// scalarBits is the width of one decoded value (rounded up for a ggml block
// type: 5 for Q4_K's 4.5).
func scalarBits(dt formats.DType) int {
	if _, tr, ok := dt.Block(); ok {
		return (8*tr.BlockBytes + tr.BlockElems - 1) / tr.BlockElems
	}
	return dt.Part().Bits()
}

// scalarAlign is the run of values a chunk of dt must start on: a whole
// block for a ggml block type, a byte's worth of values (8 covers every
// sub-byte dtype) otherwise.
func scalarAlign(dt formats.DType) uint64 {
	if _, tr, ok := dt.Block(); ok {
		return uint64(max(tr.BlockElems, 8))
	}
	return 8
}

// byteOffset is where value s of dtype dt starts, s a multiple of
// scalarAlign(dt).
func byteOffset(dt formats.DType, s uint64) uint64 {
	if _, tr, ok := dt.Block(); ok {
		return s / uint64(tr.BlockElems) * uint64(tr.BlockBytes)
	}
	return s * uint64(scalarBits(dt)) / 8
}

// scalarCount is how many decoded values a tensor holds.
func scalarCount(t *formats.Tensor) uint64 {
	if t.DType.Kind() == formats.KindComplex {
		return 2 * t.Numel()
	}
	return t.Numel()
}
