package diff

import (
	"encoding/binary"
	"math"
	"math/bits"
	"sync"

	"github.com/ckpt-tool/ckpt/formats"
)

// Fast kernels for the common case of both sides holding the same 16- or
// 32-bit float dtype: they read the raw bits, test non-finiteness on the
// exponent bits, and widen only finite values, with no intermediate []float64.
// compareValues over inspect.DecodeFloat64 is their plain twin, and
// ReferenceCompare the reference both are tested against. Where the CPU runs
// the assembly loops (kernel_simd.go) they are used instead; the Go kernels
// below serve other architectures and -tags noasm builds.

// fastKernel returns the kernel for a pair of dtypes, or nil when there is none.
func fastKernel(dtA, dtB formats.DType) func(a, b []byte, s *Stats) {
	if dtA != dtB {
		return nil
	}
	if fold := asmFolder(dtA); fold != nil {
		dt, narrow := dtA, asmNarrow(dtA)
		return func(a, b []byte, s *Stats) { compareGroups(dt, narrow, fold, a, b, s) }
	}
	return goKernel(dtA)
}

// inRangeKernel returns the kernel for two runs of dtype dt whose every value
// is in the narrow range (narrowRangeOf), or nil when there is none: the
// narrow loop without its range check, which gives on such runs the result of
// fastKernel(dt, dt) to the bit.
func inRangeKernel(dt formats.DType) func(a, b []byte, s *Stats) {
	narrow, fold := asmNarrowIn(dt), asmFolder(dt)
	if narrow == nil || fold == nil {
		return nil
	}
	return func(a, b []byte, s *Stats) { compareGroups(dt, narrow, fold, a, b, s) }
}

// goKernel returns the Go kernel for a dtype, or nil when there is none.
func goKernel(dt formats.DType) func(a, b []byte, s *Stats) {
	switch dt {
	case formats.BF16:
		return compareBF16
	case formats.F16:
		return compareF16
	case formats.F32:
		return compareF32
	}
	return nil
}

// slowPair folds one pair of values the plain way (a pair with a non-finite
// value, or the odd last element).
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
	const (
		expMask = 0x7F807F807F807F80 // the exponent bits of four BF16 lanes
		ones    = 0x0001000100010001
		highs   = 0x8000800080008000
		low15   = 0x7FFF7FFF7FFF7FFF
	)
	n := min(len(a), len(b)) / 2
	a, b = a[:2*n], b[:2*n]
	// Four elements per 64-bit load, folded into two sets of sums kept in
	// locals (registers): independent dependency chains, no memory round trip.
	var ssa0, ssb0, ssd0, dot0, ssa1, ssb1, ssd1, dot1, maxAbs float64
	var pairs, differ uint64
	i := 0
	for ; i+3 < n; i += 4 {
		wa := binary.LittleEndian.Uint64(a[2*i:])
		wb := binary.LittleEndian.Uint64(b[2*i:])
		// A lane whose exponent bits are all set (Inf or NaN) becomes zero after
		// the xor; the classic has-a-zero-lane test finds it.
		ya, yb := (wa&expMask)^expMask, (wb&expMask)^expMask
		if ((ya-ones)&^ya|(yb-ones)&^yb)&highs != 0 {
			for k := 0; k < 4; k++ {
				sh := 16 * k
				slowPair(float64(math.Float32frombits(uint32(wa>>sh)<<16)), float64(math.Float32frombits(uint32(wb>>sh)<<16)), s)
			}
			continue
		}
		x0 := float64(math.Float32frombits(uint32(wa) << 16))
		y0 := float64(math.Float32frombits(uint32(wb) << 16))
		x1 := float64(math.Float32frombits(uint32(wa>>16) << 16))
		y1 := float64(math.Float32frombits(uint32(wb>>16) << 16))
		x2 := float64(math.Float32frombits(uint32(wa>>32) << 16))
		y2 := float64(math.Float32frombits(uint32(wb>>32) << 16))
		x3 := float64(math.Float32frombits(uint32(wa>>48) << 16))
		y3 := float64(math.Float32frombits(uint32(wb>>48) << 16))
		d0, d1, d2, d3 := y0-x0, y1-x1, y2-x2, y3-x3
		ssa0 += x0*x0 + x2*x2
		ssa1 += x1*x1 + x3*x3
		ssb0 += y0*y0 + y2*y2
		ssb1 += y1*y1 + y3*y3
		ssd0 += d0*d0 + d2*d2
		ssd1 += d1*d1 + d3*d3
		dot0 += x0*y0 + x2*y2
		dot1 += x1*y1 + x3*y3
		pairs += 4
		if z := wa ^ wb; z != 0 {
			// Lanes whose bits differ, less those that are +0 against -0: for
			// finite values, exactly the lanes where d != 0 (branch-free).
			nz := ((z & low15) + low15 | z) & highs
			mag := ((wa|wb)&low15 + low15) & highs
			differ += uint64(bits.OnesCount64(nz & mag))
			// The running maximum is rarely exceeded: these branches are
			// predictable.
			if a := math.Abs(d0); a > maxAbs {
				maxAbs = a
			}
			if a := math.Abs(d1); a > maxAbs {
				maxAbs = a
			}
			if a := math.Abs(d2); a > maxAbs {
				maxAbs = a
			}
			if a := math.Abs(d3); a > maxAbs {
				maxAbs = a
			}
		}
	}
	for ; i < n; i++ {
		ha := uint32(binary.LittleEndian.Uint16(a[2*i:]))
		hb := uint32(binary.LittleEndian.Uint16(b[2*i:]))
		slowPair(float64(math.Float32frombits(ha<<16)), float64(math.Float32frombits(hb<<16)), s)
	}
	foldFinite(s, pairs, differ, ssa0+ssa1, ssb0+ssb1, ssd0+ssd1, dot0+dot1, maxAbs)
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
	var ssa0, ssb0, ssd0, dot0, ssa1, ssb1, ssd1, dot1, maxAbs float64
	var pairs, differ uint64
	i := 0
	for ; i+1 < n; i += 2 {
		ha0, hb0 := binary.LittleEndian.Uint16(a[2*i:]), binary.LittleEndian.Uint16(b[2*i:])
		ha1, hb1 := binary.LittleEndian.Uint16(a[2*i+2:]), binary.LittleEndian.Uint16(b[2*i+2:])
		x0, y0, x1, y1 := t[ha0], t[hb0], t[ha1], t[hb1]
		if ha0&0x7C00 == 0x7C00 || hb0&0x7C00 == 0x7C00 || ha1&0x7C00 == 0x7C00 || hb1&0x7C00 == 0x7C00 {
			slowPair(x0, y0, s)
			slowPair(x1, y1, s)
			continue
		}
		d0, d1 := y0-x0, y1-x1
		ssa0 += x0 * x0
		ssa1 += x1 * x1
		ssb0 += y0 * y0
		ssb1 += y1 * y1
		ssd0 += d0 * d0
		ssd1 += d1 * d1
		dot0 += x0 * y0
		dot1 += x1 * y1
		pairs += 2
		if d0 != 0 {
			differ++
		}
		if d1 != 0 {
			differ++
		}
		if m := math.Max(math.Abs(d0), math.Abs(d1)); m > maxAbs {
			maxAbs = m
		}
	}
	for ; i < n; i++ {
		slowPair(t[binary.LittleEndian.Uint16(a[2*i:])], t[binary.LittleEndian.Uint16(b[2*i:])], s)
	}
	foldFinite(s, pairs, differ, ssa0+ssa1, ssb0+ssb1, ssd0+ssd1, dot0+dot1, maxAbs)
}

func compareF32(a, b []byte, s *Stats) {
	const exp = 0x7F800000
	n := min(len(a), len(b)) / 4
	a, b = a[:4*n], b[:4*n]
	var ssa0, ssb0, ssd0, dot0, ssa1, ssb1, ssd1, dot1, maxAbs float64
	var pairs, differ uint64
	i := 0
	for ; i+1 < n; i += 2 {
		ua0, ub0 := binary.LittleEndian.Uint32(a[4*i:]), binary.LittleEndian.Uint32(b[4*i:])
		ua1, ub1 := binary.LittleEndian.Uint32(a[4*i+4:]), binary.LittleEndian.Uint32(b[4*i+4:])
		x0, y0 := float64(math.Float32frombits(ua0)), float64(math.Float32frombits(ub0))
		x1, y1 := float64(math.Float32frombits(ua1)), float64(math.Float32frombits(ub1))
		if ua0&exp == exp || ub0&exp == exp || ua1&exp == exp || ub1&exp == exp {
			slowPair(x0, y0, s)
			slowPair(x1, y1, s)
			continue
		}
		d0, d1 := y0-x0, y1-x1
		ssa0 += x0 * x0
		ssa1 += x1 * x1
		ssb0 += y0 * y0
		ssb1 += y1 * y1
		ssd0 += d0 * d0
		ssd1 += d1 * d1
		dot0 += x0 * y0
		dot1 += x1 * y1
		pairs += 2
		if d0 != 0 {
			differ++
		}
		if d1 != 0 {
			differ++
		}
		if m := math.Max(math.Abs(d0), math.Abs(d1)); m > maxAbs {
			maxAbs = m
		}
	}
	for ; i < n; i++ {
		ua, ub := binary.LittleEndian.Uint32(a[4*i:]), binary.LittleEndian.Uint32(b[4*i:])
		slowPair(float64(math.Float32frombits(ua)), float64(math.Float32frombits(ub)), s)
	}
	foldFinite(s, pairs, differ, ssa0+ssa1, ssb0+ssb1, ssd0+ssd1, dot0+dot1, maxAbs)
}
