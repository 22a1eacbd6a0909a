// Package fp32 holds the float32 arithmetic that the Go twins of the
// assembly kernels need and Go does not provide: a multiply-add rounded once
// to float32, as VFMADD231PS computes it (math.FMA rounds to float64, and
// rounding that again to float32 can differ from rounding once).
package fp32

import "math"

// FMA is x·y + acc rounded once to float32 (round to nearest, ties to even).
// x·y is exact in float64 (24 significant bits each at most, and within
// range), so TwoSum gives the exact sum as s + e; rounding s to float32 gives
// the rounding of the exact sum unless s falls on a midpoint between two
// float32 values, where the sign of e decides.
func FMA(x, y, acc float32) float32 {
	p, a := float64(x)*float64(y), float64(acc)
	s := p + a
	bb := s - p
	e := (p - (s - bb)) + (a - bb)
	r := float32(s)
	if e == 0 || float64(r) == s || math.IsInf(float64(r), 0) {
		return r
	}
	o := math.Nextafter32(r, float32(math.Copysign(math.Inf(1), s-float64(r))))
	if s != (float64(r)+float64(o))/2 {
		return r
	}
	if (e > 0) == (o > r) {
		return o
	}
	return r
}
