package diff

import (
	"encoding/binary"
	"math"
	"sync"

	"github.com/ckpt-tool/ckpt/formats"
)

// Fast kernels for the common case of both sides holding the same 16- or
// 32-bit float dtype: they read the raw bits, test non-finiteness on the
// exponent bits, and widen only finite values, with no intermediate []float64.
// compareValues over inspect.DecodeFloat64 is their plain twin, and
// ReferenceCompare the reference both are tested against.

// fastKernel returns the kernel for a pair of dtypes, or nil when there is none.
func fastKernel(dtA, dtB formats.DType) func(a, b []byte, s *Stats) {
	if dtA != dtB {
		return nil
	}
	switch dtA {
	case formats.BF16:
		return compareBF16
	case formats.F16:
		return compareF16
	case formats.F32:
		return compareF32
	}
	return nil
}

// slowPair folds one pair of values of which at least one is not finite.
func slowPair(x, y float64, s *Stats) {
	compareValues([]float64{x}, []float64{y}, s)
}

// foldFinite adds the sums of a block of finite pairs to s.
func foldFinite(s *Stats, pairs, differ uint64, ssa, ssb, ssd, dot, maxAbs float64) {
	s.Pairs += pairs
	s.Differ += differ
	s.SumSqA += ssa
	s.SumSqB += ssb
	s.SumSqD += ssd
	s.Dot += dot
	s.MaxAbs = math.Max(s.MaxAbs, maxAbs)
}

func compareBF16(a, b []byte, s *Stats) {
	n := min(len(a), len(b)) / 2
	a, b = a[:2*n], b[:2*n]
	var acc finiteAcc
	i := 0
	// Two elements per iteration into two sets of sums: independent dependency
	// chains keep the floating-point units busy.
	for ; i+1 < n; i += 2 {
		ha0 := uint32(binary.LittleEndian.Uint16(a[2*i:]))
		hb0 := uint32(binary.LittleEndian.Uint16(b[2*i:]))
		ha1 := uint32(binary.LittleEndian.Uint16(a[2*i+2:]))
		hb1 := uint32(binary.LittleEndian.Uint16(b[2*i+2:]))
		bad0 := ha0&0x7F80 == 0x7F80 || hb0&0x7F80 == 0x7F80
		bad1 := ha1&0x7F80 == 0x7F80 || hb1&0x7F80 == 0x7F80
		if bad0 || bad1 {
			acc.one(float64(math.Float32frombits(ha0<<16)), float64(math.Float32frombits(hb0<<16)), bad0, s)
			acc.one(float64(math.Float32frombits(ha1<<16)), float64(math.Float32frombits(hb1<<16)), bad1, s)
			continue
		}
		acc.two(float64(math.Float32frombits(ha0<<16)), float64(math.Float32frombits(hb0<<16)),
			float64(math.Float32frombits(ha1<<16)), float64(math.Float32frombits(hb1<<16)))
	}
	for ; i < n; i++ {
		ha := uint32(binary.LittleEndian.Uint16(a[2*i:]))
		hb := uint32(binary.LittleEndian.Uint16(b[2*i:]))
		acc.one(float64(math.Float32frombits(ha<<16)), float64(math.Float32frombits(hb<<16)), ha&0x7F80 == 0x7F80 || hb&0x7F80 == 0x7F80, s)
	}
	acc.flush(s)
}

// finiteAcc holds two sets of partial sums over finite pairs.
type finiteAcc struct {
	ssa0, ssb0, ssd0, dot0 float64
	ssa1, ssb1, ssd1, dot1 float64
	maxAbs                 float64
	pairs, differ          uint64
}

// two folds two finite pairs, one into each set of sums.
func (f *finiteAcc) two(x0, y0, x1, y1 float64) {
	d0, d1 := y0-x0, y1-x1
	f.ssa0 += x0 * x0
	f.ssa1 += x1 * x1
	f.ssb0 += y0 * y0
	f.ssb1 += y1 * y1
	f.ssd0 += d0 * d0
	f.ssd1 += d1 * d1
	f.dot0 += x0 * y0
	f.dot1 += x1 * y1
	f.pairs += 2
	if d0 != 0 {
		f.differ++
	}
	if d1 != 0 {
		f.differ++
	}
	if d0 < 0 {
		d0 = -d0
	}
	if d1 < 0 {
		d1 = -d1
	}
	if d0 > f.maxAbs {
		f.maxAbs = d0
	}
	if d1 > f.maxAbs {
		f.maxAbs = d1
	}
}

// one folds one pair; when either value is not finite it goes to s directly.
func (f *finiteAcc) one(x, y float64, nonFinite bool, s *Stats) {
	if nonFinite {
		slowPair(x, y, s)
		return
	}
	d := y - x
	f.ssa0 += x * x
	f.ssb0 += y * y
	f.ssd0 += d * d
	f.dot0 += x * y
	f.pairs++
	if d != 0 {
		f.differ++
	}
	if d < 0 {
		d = -d
	}
	if d > f.maxAbs {
		f.maxAbs = d
	}
}

func (f *finiteAcc) flush(s *Stats) {
	foldFinite(s, f.pairs, f.differ, f.ssa0+f.ssa1, f.ssb0+f.ssb1, f.ssd0+f.ssd1, f.dot0+f.dot1, f.maxAbs)
}

// f16Values maps every binary16 pattern to its value, from the reference
// decoder in formats.
var f16Values = sync.OnceValue(func() *[65536]float64 {
	var t [65536]float64
	for i := range t {
		t[i] = formats.F16ToFloat64(uint16(i))
	}
	return &t
})

func compareF16(a, b []byte, s *Stats) {
	t := f16Values()
	n := min(len(a), len(b)) / 2
	a, b = a[:2*n], b[:2*n]
	var acc finiteAcc
	i := 0
	for ; i+1 < n; i += 2 {
		ha0, hb0 := binary.LittleEndian.Uint16(a[2*i:]), binary.LittleEndian.Uint16(b[2*i:])
		ha1, hb1 := binary.LittleEndian.Uint16(a[2*i+2:]), binary.LittleEndian.Uint16(b[2*i+2:])
		bad0 := ha0&0x7C00 == 0x7C00 || hb0&0x7C00 == 0x7C00
		bad1 := ha1&0x7C00 == 0x7C00 || hb1&0x7C00 == 0x7C00
		if bad0 || bad1 {
			acc.one(t[ha0], t[hb0], bad0, s)
			acc.one(t[ha1], t[hb1], bad1, s)
			continue
		}
		acc.two(t[ha0], t[hb0], t[ha1], t[hb1])
	}
	for ; i < n; i++ {
		ha, hb := binary.LittleEndian.Uint16(a[2*i:]), binary.LittleEndian.Uint16(b[2*i:])
		acc.one(t[ha], t[hb], ha&0x7C00 == 0x7C00 || hb&0x7C00 == 0x7C00, s)
	}
	acc.flush(s)
}

func compareF32(a, b []byte, s *Stats) {
	const exp = 0x7F800000
	n := min(len(a), len(b)) / 4
	a, b = a[:4*n], b[:4*n]
	var acc finiteAcc
	i := 0
	for ; i+1 < n; i += 2 {
		ua0, ub0 := binary.LittleEndian.Uint32(a[4*i:]), binary.LittleEndian.Uint32(b[4*i:])
		ua1, ub1 := binary.LittleEndian.Uint32(a[4*i+4:]), binary.LittleEndian.Uint32(b[4*i+4:])
		x0, y0 := float64(math.Float32frombits(ua0)), float64(math.Float32frombits(ub0))
		x1, y1 := float64(math.Float32frombits(ua1)), float64(math.Float32frombits(ub1))
		bad0 := ua0&exp == exp || ub0&exp == exp
		bad1 := ua1&exp == exp || ub1&exp == exp
		if bad0 || bad1 {
			acc.one(x0, y0, bad0, s)
			acc.one(x1, y1, bad1, s)
			continue
		}
		acc.two(x0, y0, x1, y1)
	}
	for ; i < n; i++ {
		ua, ub := binary.LittleEndian.Uint32(a[4*i:]), binary.LittleEndian.Uint32(b[4*i:])
		acc.one(float64(math.Float32frombits(ua)), float64(math.Float32frombits(ub)), ua&exp == exp || ub&exp == exp, s)
	}
	acc.flush(s)
}
