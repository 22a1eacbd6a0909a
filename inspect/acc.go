package inspect

import "math"

// Acc accumulates the statistics of a run of elements. Statistics are over finite
// values only, in float64, merged with Chan et al.'s pairwise update so that a
// 68M-element tensor loses no precision. Merging accumulators in a fixed order
// gives bit-identical results whatever the number of workers.
//
// For a complex dtype (C64, C128) an element is one complex number: the counts
// are of elements (it is non-finite when either part is, classified as
// formats.ClassifyComplex says; zero when both parts are; subnormal when it is
// not zero and a nonzero part is below the smallest normal), and FirstBad is an
// element index. Min, Max, AbsMax, Mean and Std are over the real and
// imaginary parts of the finite elements taken as values; SumSq is the sum of
// |z|², so L2 is the Frobenius norm; M2 is half the parts' sum of squared
// deviations, so that Std = sqrt(M2/Finite) and merging by element counts
// stay exact.
type Acc struct {
	Count     uint64  // elements seen
	NaN       uint64  // NaN elements
	PosInf    uint64  // +Inf elements
	NegInf    uint64  // -Inf elements
	Zeros     uint64  // elements equal to zero (either sign)
	Subnormal uint64  // nonzero finite elements below the dtype's smallest normal
	Finite    uint64  // finite elements: the population of the statistics below
	Min       float64 // over finite values; +Inf when Finite == 0
	Max       float64 // over finite values; -Inf when Finite == 0
	AbsMax    float64 // largest |x| over finite values
	Mean      float64 // running mean of finite values
	M2        float64 // sum of squared deviations from Mean
	SumSq     float64 // sum of squares (for the L2 norm)
	FirstBad  int64   // flat index of the first non-finite element, -1 when none
	// BadScales counts the blocks of a ggml block type whose scale is NaN or
	// infinite (0 for every other dtype); Undecoded the elements of a block
	// type whose values are not decoded (the grid IQ types: only their scales
	// are checked).
	BadScales uint64
	Undecoded uint64
}

// NewAcc returns an empty accumulator.
func NewAcc() Acc {
	return Acc{Min: math.Inf(1), Max: math.Inf(-1), FirstBad: -1}
}

// Merge folds b, which covers the elements right after a's, into a.
func (a *Acc) Merge(b *Acc) {
	if a.FirstBad < 0 && b.FirstBad >= 0 {
		a.FirstBad = int64(a.Count) + b.FirstBad
	}
	a.Count += b.Count
	a.BadScales += b.BadScales
	a.Undecoded += b.Undecoded
	a.NaN += b.NaN
	a.PosInf += b.PosInf
	a.NegInf += b.NegInf
	a.Zeros += b.Zeros
	a.Subnormal += b.Subnormal
	a.SumSq += b.SumSq
	a.Min = math.Min(a.Min, b.Min)
	a.Max = math.Max(a.Max, b.Max)
	a.AbsMax = math.Max(a.AbsMax, b.AbsMax)
	if b.Finite == 0 {
		return
	}
	if a.Finite == 0 {
		a.Finite, a.Mean, a.M2 = b.Finite, b.Mean, b.M2
		return
	}
	na, nb := float64(a.Finite), float64(b.Finite)
	n := na + nb
	delta := b.Mean - a.Mean
	a.Mean += delta * nb / n
	a.M2 += b.M2 + delta*delta*na*nb/n
	a.Finite += b.Finite
}

// NonFinite is the number of NaN and infinite elements.
func (a *Acc) NonFinite() uint64 { return a.NaN + a.PosInf + a.NegInf }

// Std is the population standard deviation of the finite values.
func (a *Acc) Std() float64 {
	if a.Finite == 0 {
		return math.NaN()
	}
	return math.Sqrt(a.M2 / float64(a.Finite))
}

// L2 is the Euclidean norm of the finite values.
func (a *Acc) L2() float64 { return math.Sqrt(a.SumSq) }
