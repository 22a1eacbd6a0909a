package diff

import (
	"math"

	"github.com/ckpt-tool/ckpt/formats"
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
// decoded by formats.Element, one at a time, summed in one pass. It is the
// twin the chunked parallel engine is tested against; it is slow on purpose.
// a and b must hold the same number of scalars (see scalars).
func ReferenceCompare(dtA formats.DType, a []byte, dtB formats.DType, b []byte) Stats {
	var s Stats
	n := scalarsIn(dtA, len(a))
	for i := 0; i < n; i++ {
		x, y := formats.Element(dtA, a, i), formats.Element(dtB, b, i)
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

// scalarsIn is how many decoded values raw data of a dtype holds (a complex
// dtype counts its real and imaginary parts), as inspect.DecodeFloat64 counts them.
func scalarsIn(dt formats.DType, nbytes int) int {
	return nbytes * 8 / scalarBits(dt)
}

// scalarBits is the width of one decoded value.
func scalarBits(dt formats.DType) int { return dt.Part().Bits() }

// scalarCount is how many decoded values a tensor holds.
func scalarCount(t *formats.Tensor) uint64 {
	if t.DType.Kind() == formats.KindComplex {
		return 2 * t.Numel()
	}
	return t.Numel()
}
