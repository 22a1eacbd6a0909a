package inspect

import (
	"encoding/binary"
	"math"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/fp32"
)

// The vector kernel for F32 (and through it C64, whose parts are F32; see
// kernel_simd.go): keys and counters in 8 lanes of 32 bits (position mod 8),
// float64 lane vector q for the elements at positions 4q..4q+3 of a group of
// 16.

// simdLanes32 is what the F32 loops accumulate; the assembly knows its layout
// (the same offsets as simdLanes).
type simdLanes32 struct {
	sum, sq    [4][4]float64
	kmin, kmax [8]int32 // order keys of the extremes per position (see orderKey32)
	zeros      [8]uint32
	nontiny    [8]uint32
	bad        [8]uint32
	pinf, ninf [8]uint32
	_          [64]byte // (the 16-bit lanes' scratch: the narrow lanes below sit where simdLanes has them)
	// the narrow loop's largest raw pattern, as int32 and as uint32 (see
	// narrowTotals), and smallest magnitude, per position mod 8
	smax       [8]int32
	umax, amin [8]uint32
}

// simdConsts32 are the bit patterns the F32 loops classify with, each in the
// 8 lanes of a vector; the assembly knows the layout.
type simdConsts32 struct {
	abs, tiny, finite, pinf, ninf, minInt, zero [8]uint32
}

// F32 patterns.
const (
	f32Tiny   = 0x007FFFFF // largest magnitude below the smallest normal
	f32Finite = 0x7F7FFFFF // largest finite magnitude
	f32PInf   = 0x7F800000
	f32NInf   = 0xFF800000
)

var f32Consts = func() *simdConsts32 {
	c := &simdConsts32{}
	for i := range 8 {
		c.abs[i], c.tiny[i], c.finite[i] = 0x7FFFFFFF, f32Tiny, f32Finite
		c.pinf[i], c.ninf[i], c.minInt[i] = f32PInf, f32NInf, 0x80000000
	}
	return c
}()

// f32Loops returns the F32 assembly loops to run: with the AVX-512 narrow
// and count loops where they are on (simd512OK), else the AVX2 ones; their
// results are the same.
func f32Loops() *simdAsm32 {
	if simd512OK {
		return &f32Asm512
	}
	return &f32Asm
}

// simd32 is the F32 vector kernel, with its assembly loops or, when asm is
// false, its Go twins alone; l, when not nil, is the worker's lanes (see
// simd16).
type simd32 struct {
	asm bool
	l   *simdLanes32
}

// simd32Wide is the F32 vector kernel without its narrow loop: the float64
// loops alone, whose sums keep the float64 bound (see kernel_simd.go).
type simd32Wide struct{ simd32 }

func (simd32Wide) narrow([]byte, bool) (laneTotals, bool) { return laneTotals{}, false }

// statsF32Wide computes the statistics of F32 data with the float64 loops
// of the vector kernel, in the lanes of sc; ok is false (and the caller uses
// another kernel) when this CPU has none.
func statsF32Wide(raw []byte, sc *scratch) (acc Acc, ok bool) {
	k, ok := simdFor(formats.F32, sc)
	if !ok {
		return Acc{}, false
	}
	return vecStats(simd32Wide{k.(simd32)}, raw), true
}

// buf returns the lanes to fold into, emptied.
func (k simd32) buf() *simdLanes32 {
	l := k.l
	if l == nil {
		l = new(simdLanes32)
	}
	l.reset()
	return l
}

func (k simd32) size() int         { return 4 }
func (k simd32) countsFirst() bool { return false }

func (k simd32) lanes(blk []byte, masked bool) laneTotals {
	l := k.buf()
	k.fill(blk, l, masked)
	return l.totals()
}

// fill folds a block into the lanes: whole groups of 16 by the assembly loop
// when there is one, the rest by the Go twin.
func (k simd32) fill(blk []byte, l *simdLanes32, masked bool) {
	done := 0
	if groups := len(blk) / 64; k.asm && groups > 0 {
		if masked {
			f32Loops().masked(&blk[0], groups, l, f32Consts)
		} else {
			f32Loops().lanes(&blk[0], groups, l, f32Consts)
		}
		done = 16 * groups
	}
	simdLanes32Go(blk, done, l, masked)
}

// The F32 narrow loop folds a block whose largest magnitude is 0 or in
// [narrow32Min, narrow32Max) (see kernel_simd.go).
const (
	narrow32Min = 0x1p-40
	narrow32Max = 0x1p60
)

// narrow folds a block with float32 sums (see kernel_simd.go), keeping the
// smallest magnitude (a block where that is below the smallest normal is
// then counted again by simdCount32) or, when counting, counting the zeros
// and subnormals as it goes: the result is the same.
func (k simd32) narrow(blk []byte, counting bool) (laneTotals, bool) {
	if k.largeMean(blk) {
		return laneTotals{}, false
	}
	l := k.buf()
	k.narrowFill(blk, l, counting)
	t, ok := l.narrowTotals()
	if !ok {
		return t, false
	}
	if lo, hi := k.finiteKeys(); t.kmin < lo || t.kmax > hi {
		return t, true // the caller folds the block again, masked
	}
	if amax := math.Max(-k.value(t.kmin), k.value(t.kmax)); amax >= narrow32Max || amax != 0 && amax < narrow32Min {
		return t, false
	}
	switch {
	case counting:
		t.zeros, t.nontiny = l.counts()
	case l.minMagnitude() <= f32Tiny:
		k.countFill(blk, l)
		t.zeros, t.nontiny = l.counts()
	default:
		t.zeros, t.nontiny = 0, uint64(len(blk)/4)
	}
	return t, true
}

// narrowProbe is how many elements at the start of a block largeMean looks at.
const narrowProbe = 256

// largeMean says whether the first narrowProbe elements of a block (of at
// least 4 times as many) have a mean large against their spread, as the
// narrow loop sees them (sumsq - sum·mean under narrowM2Cancel of sumsq, or
// not a number): a block like that would take the second pass after the
// narrow loop, and the float64 loop alone (whose second pass starts only
// where 10 bits cancel) costs less. The answer depends on the block's bytes
// alone, and it changes only which loop folds the block (and the rounding of
// the sums, within the bounds of either).
func (k simd32) largeMean(blk []byte) bool {
	if len(blk) < 4*4*narrowProbe {
		return false
	}
	l := k.buf()
	k.narrowFill(blk[:4*narrowProbe], l, false)
	s, q := laneSums(&l.sum, &l.sq)
	return !(q-s*(s/narrowProbe) >= q*narrowM2Cancel)
}

// narrowFill folds a block into the lanes with float32 sums, keeping the
// extremes as raw patterns and the smallest magnitude, and when counting
// the zeros and subnormals: whole pairs of groups of 16 by the assembly loop
// when there is one, the rest by the Go twin.
func (k simd32) narrowFill(blk []byte, l *simdLanes32, counting bool) {
	done := 0
	if pairs := len(blk) / 128; k.asm && pairs > 0 {
		if counting {
			f32Loops().narrowCount(&blk[0], pairs, l, f32Consts)
		} else {
			f32Loops().narrow(&blk[0], pairs, l, f32Consts)
		}
		done = 32 * pairs
	}
	simdNarrow32Go(blk, done, l, counting)
}

// countFill counts the zeros and the magnitudes of at least the smallest
// normal of a block into the lanes: whole groups of 16 by the assembly loop
// when there is one, the rest by the Go twin.
func (k simd32) countFill(blk []byte, l *simdLanes32) {
	done := 0
	if groups := len(blk) / 64; k.asm && groups > 0 {
		f32Loops().count(&blk[0], groups, l, f32Consts)
		done = 16 * groups
	}
	simdCount32Go(blk, done, l)
}

// simdCount32Go is the twin of simdCount32 for elements from..end of blk.
func simdCount32Go(blk []byte, from int, l *simdLanes32) {
	for e := from; e < len(blk)/4; e++ {
		a := binary.LittleEndian.Uint32(blk[4*e:]) & 0x7FFFFFFF
		if a == 0 {
			l.zeros[e&7]++
		}
		if a > f32Tiny {
			l.nontiny[e&7]++
		}
	}
}

// minMagnitude is the smallest magnitude the narrow loop met.
func (l *simdLanes32) minMagnitude() uint32 {
	m := uint32(math.MaxUint32)
	for _, a := range l.amin {
		m = min(m, a)
	}
	return m
}

// counts adds up the zero and nontiny counters.
func (l *simdLanes32) counts() (zeros, nontiny uint64) {
	for p := range 8 {
		zeros += uint64(l.zeros[p])
		nontiny += uint64(l.nontiny[p])
	}
	return zeros, nontiny
}

// narrowTotals reduces the lanes of the narrow loop. As int32 the
// nonnegative raw patterns sort in order above the negative ones, as uint32
// below them: the largest as int32 is the maximum when the block holds a
// nonnegative pattern, the largest as uint32 the minimum when it holds a
// negative one. A block of one sign takes its other extreme from the
// smallest magnitude (+0 only when no pattern is negative, -0 only when
// none is nonnegative, as the order keys would say). A NaN or an infinity
// of either sign is beyond one of the two (t then has kmax beyond every
// finite key). ok is false for an empty block. The counts are left to the
// caller.
func (l *simdLanes32) narrowTotals() (t laneTotals, ok bool) {
	smax, umax, amin := int32(math.MinInt32), uint32(0), uint32(math.MaxUint32)
	for p := range 8 {
		smax, umax, amin = max(smax, l.smax[p]), max(umax, l.umax[p]), min(amin, l.amin[p])
	}
	t.sum, t.sq = laneSums(&l.sum, &l.sq)
	if smax > f32Finite || umax > 0x80000000|f32Finite {
		t.kmin, t.kmax = math.MinInt64, math.MaxInt64
		return t, true
	}
	pos, neg := smax >= 0, umax >= 0x80000000
	switch {
	case pos && neg:
		t.kmin, t.kmax = int64(orderKey32(umax)), int64(orderKey32(uint32(smax)))
	case pos:
		t.kmin, t.kmax = int64(orderKey32(amin)), int64(orderKey32(uint32(smax)))
	case neg:
		t.kmin, t.kmax = int64(orderKey32(umax)), int64(orderKey32(0x80000000|amin))
	default:
		return t, false
	}
	return t, true
}

func (k simd32) dev(blk []byte, pivot float64, hasBad bool) (d, d2 float64) {
	l := k.buf()
	k.devFill(blk, pivot, l, hasBad)
	return laneSums(&l.sum, &l.sq)
}

// devFill adds the deviations from pivot of a block's finite values to the
// sums of the lanes (the assembly loop only takes blocks without NaN or
// infinity).
func (k simd32) devFill(blk []byte, pivot float64, l *simdLanes32, hasBad bool) {
	done := 0
	if groups := len(blk) / 64; k.asm && !hasBad && groups > 0 {
		f32Loops().dev(&blk[0], groups, pivot, l, f32Consts)
		done = 16 * groups
	}
	simdDev32Go(blk, done, pivot, l)
}

func (k simd32) value(key int64) float64 {
	return float64(math.Float32frombits(keyPattern32(int32(key))))
}
func (k simd32) finiteKeys() (lo, hi int64) {
	return int64(orderKey32(0x80000000 | f32Finite)), int64(orderKey32(f32Finite))
}

func (k simd32) firstBad(blk []byte) int64 {
	for i := 0; i+4 <= len(blk); i += 4 {
		if binary.LittleEndian.Uint32(blk[i:])&0x7FFFFFFF > f32Finite {
			return int64(i / 4)
		}
	}
	return -1
}

// reset empties the lanes.
func (l *simdLanes32) reset() {
	*l = simdLanes32{}
	for p := range 8 {
		l.kmin[p], l.kmax[p] = math.MaxInt32, math.MinInt32
		l.smax[p], l.amin[p] = math.MinInt32, math.MaxUint32
	}
}

// totals reduces the lanes.
func (l *simdLanes32) totals() laneTotals {
	t := laneTotals{kmin: math.MaxInt32, kmax: math.MinInt32}
	for p := range 8 {
		t.zeros += uint64(l.zeros[p])
		t.nontiny += uint64(l.nontiny[p])
		t.bad += uint64(l.bad[p])
		t.pinf += uint64(l.pinf[p])
		t.ninf += uint64(l.ninf[p])
		t.kmin, t.kmax = min(t.kmin, int64(l.kmin[p])), max(t.kmax, int64(l.kmax[p]))
	}
	t.sum, t.sq = laneSums(&l.sum, &l.sq)
	return t
}

// orderKey32 maps an F32 pattern to an int32 with the same order as the
// values (-0 just below +0; NaN beyond the infinities).
func orderKey32(w uint32) int32 { return int32(w ^ (uint32(int32(w)>>31) & 0x7FFFFFFF)) }

// keyPattern32 inverts orderKey32.
func keyPattern32(k int32) uint32 { return uint32(k) ^ (uint32(k>>31) & 0x7FFFFFFF) }

// simdLanes32Go is the twin of the F32 assembly loops: it folds elements
// from..end of blk into the lanes exactly as they do.
func simdLanes32Go(blk []byte, from int, l *simdLanes32, masked bool) {
	n := len(blk) / 4
	for e := from; e < n; e++ {
		w := binary.LittleEndian.Uint32(blk[4*e:])
		p := e & 7
		a := w & 0x7FFFFFFF
		if a == 0 {
			l.zeros[p]++
		}
		if a > f32Tiny {
			l.nontiny[p]++
		}
		if masked && a > f32Finite {
			l.bad[p]++
			switch w {
			case f32PInf:
				l.pinf[p]++
			case f32NInf:
				l.ninf[p]++
			}
			w = 0
		} else {
			k := orderKey32(w)
			l.kmin[p], l.kmax[p] = min(l.kmin[p], k), max(l.kmax[p], k)
		}
		x := float64(math.Float32frombits(w))
		v, j := (e&15)>>2, e&3
		l.sum[v][j] += x
		l.sq[v][j] = math.FMA(x, x, l.sq[v][j])
	}
}

// simdNarrow32Go is the twin of the F32 narrow loops (counting: of the
// counting one): it folds elements
// from..end of blk (from is 0 or the end of the whole pairs of groups) as it
// does. Position p of a pair of groups of 16 goes to lane p&7 of float32
// vector p>>3; the vectors take the whole pairs in runs of narrow32Pairs from
// the first (the last run may be shorter), then the elements after them as
// one more run; after each run they are added up, (0 + 1) + (2 + 3), and
// added to the float64 lanes.
func simdNarrow32Go(blk []byte, from int, l *simdLanes32, counting bool) {
	n := len(blk) / 4
	whole := n &^ 31
	var s, q [4][8]float32 // [vector][lane]
	for e := from; e < n; e++ {
		w := binary.LittleEndian.Uint32(blk[4*e:])
		p := e & 7
		a := w & 0x7FFFFFFF
		l.smax[p], l.umax[p], l.amin[p] = max(l.smax[p], int32(w)), max(l.umax[p], w), min(l.amin[p], a)
		if counting {
			if a == 0 {
				l.zeros[p]++
			}
			if a > f32Tiny {
				l.nontiny[p]++
			}
		}
		x := math.Float32frombits(w)
		v := (e >> 3) & 3
		s[v][p] += x
		q[v][p] = fp32.FMA(x, x, q[v][p])
		if e+1 == n || e+1 <= whole && (e+1 == whole || (e+1-from)%(32*narrow32Pairs) == 0) {
			for i := range 8 {
				l.sum[i>>2][i&3] += float64((s[0][i] + s[1][i]) + (s[2][i] + s[3][i]))
				l.sq[i>>2][i&3] += float64((q[0][i] + q[1][i]) + (q[2][i] + q[3][i]))
			}
			s, q = [4][8]float32{}, [4][8]float32{}
		}
	}
}

// simdDev32Go is the twin of the F32 deviation loop: it adds x - pivot and
// its square for the finite elements from..end of blk.
func simdDev32Go(blk []byte, from int, pivot float64, l *simdLanes32) {
	n := len(blk) / 4
	for e := from; e < n; e++ {
		w := binary.LittleEndian.Uint32(blk[4*e:])
		if w&0x7FFFFFFF > f32Finite {
			continue
		}
		d := float64(math.Float32frombits(w)) - pivot
		v, j := (e&15)>>2, e&3
		l.sum[v][j] += d
		l.sq[v][j] = math.FMA(d, d, l.sq[v][j])
	}
}

// simdAsm32 holds the F32 assembly loops (nil where there are none).
type simdAsm32 struct {
	narrow        func(p *byte, pairs int, l *simdLanes32, c *simdConsts32)
	narrowCount   func(p *byte, pairs int, l *simdLanes32, c *simdConsts32)
	count         func(p *byte, groups int, l *simdLanes32, c *simdConsts32)
	lanes, masked func(p *byte, groups int, l *simdLanes32, c *simdConsts32)
	dev           func(p *byte, groups int, pivot float64, l *simdLanes32, c *simdConsts32)
}
