package inspect

import (
	"encoding/binary"
	"math"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/fp32"
)

// The vector kernel for the 16-bit floats, BF16 and F16 (see kernel_simd.go):
// keys and counters in 16 lanes of 16 bits, one per position in a group of 16.

// simdLanes is what the 16-bit loops accumulate; the assembly knows its layout.
type simdLanes struct {
	sum, sq    [4][4]float64 // float64 lanes: sum of x and of x² (or of x - pivot and its square)
	kmin, kmax [16]int16     // order keys of the extremes per position (see orderKey16)
	zeros      [16]uint16    // ±0
	nontiny    [16]uint16    // magnitudes of at least the smallest normal (non-finite included)
	bad        [16]uint16    // NaN and infinities (masked loop only)
	pinf, ninf [16]uint16    // +Inf, -Inf (masked loop only)
	scratch    [64]byte      // where the loops widen float32 to float64 from
	// the narrow loops' largest raw pattern, as int16 and as uint16 (see
	// narrowTotals), and smallest magnitude
	smax       [16]int16
	umax, amin [16]uint16
}

// simdConsts are the bit patterns a 16-bit loop classifies with, each
// repeated in the 16 lanes of a vector; the assembly knows the layout.
type simdConsts struct {
	abs, tiny, finite, pinf, ninf [16]uint16
	hi                            [16]uint16 // 0x0000, 0xFFFF: the high pattern of each 32-bit lane
}

// simdAsm holds the assembly loops of one dtype (nil where there are none).
type simdAsm struct {
	narrow, narrowCount func(p *byte, pairs int, l *simdLanes, c *simdConsts)
	count               func(p *byte, groups int, l *simdLanes, c *simdConsts)
	lanes, masked       func(p *byte, groups int, l *simdLanes, c *simdConsts)
	dev                 func(p *byte, groups int, pivot float64, l *simdLanes, c *simdConsts)
}

// simdFormat describes one 16-bit float dtype to the kernel.
type simdFormat struct {
	dt           formats.DType
	tiny, finite uint16 // largest magnitude below the smallest normal; largest finite magnitude
	pinf, ninf   uint16
	lane         [16]struct{ v, j int } // the float64 lane (vector, index) of each position in a group of 16
	narrowLane   [16]struct{ h, i int } // the float32 lane (vector, index) of each position in the narrow loops
	// narrowMin, narrowMax: a finite block whose largest magnitude is 0 or
	// in [narrowMin, narrowMax) is folded with float32 sums (see kernel_simd.go)
	narrowMin, narrowMax float64
	toF32                func(uint16) float32
	consts               simdConsts
	minKey, maxKey       int16    // order keys of the smallest and largest finite values
	asm, asm512          *simdAsm // the AVX2 loops; the same with the AVX-512 narrow and count loops
}

// loops returns the assembly loops to run: with the AVX-512 narrow and count
// loops where they are on (simd512OK), else the AVX2 ones; their results are
// the same.
func (f *simdFormat) loops() *simdAsm {
	if simd512OK {
		return f.asm512
	}
	return f.asm
}

// newSIMDFormat describes a 16-bit dtype by its patterns, where its loops
// put each position of a group of 16, and its exact widening to float32.
func newSIMDFormat(dt formats.DType, tiny, finite, pinf, ninf uint16, lane, narrowLane func(p int) (v, j int),
	narrowMin, narrowMax float64, toF32 func(uint16) float32, asm, asm512 *simdAsm) *simdFormat {
	f := &simdFormat{dt: dt, tiny: tiny, finite: finite, pinf: pinf, ninf: ninf, toF32: toF32, asm: asm, asm512: asm512,
		minKey: orderKey16(0x8000 | finite), maxKey: orderKey16(finite), narrowMin: narrowMin, narrowMax: narrowMax}
	for p := range 16 {
		f.lane[p].v, f.lane[p].j = lane(p)
		f.narrowLane[p].h, f.narrowLane[p].i = narrowLane(p)
		f.consts.abs[p], f.consts.tiny[p], f.consts.finite[p] = 0x7FFF, tiny, finite
		f.consts.pinf[p], f.consts.ninf[p] = pinf, ninf
		f.consts.hi[p] = uint16(0xFFFF * (p & 1))
	}
	return f
}

// The two dtypes. BF16 is widened as 32-bit lanes holding two patterns each,
// the even elements first (positions 0, 2, 4, 6 to vector 0, 8, ..., 14 to
// vector 1), then the odd ones (vectors 2 and 3); VCVTPH2PS widens F16 in
// order (positions 4v..4v+3 to vector v). In the narrow loops a BF16 group
// is two float32 vectors, the even positions (2i to lane i of vector 0) and
// the odd ones (2i+1 to lane i of vector 1); an F16 group is positions 0-7
// (vector 0) and 8-15 (vector 1). The squares of BF16 values stay exact in
// float32 only from 2⁻⁶³ on, and the float32 lanes must not overflow, hence
// its range; those of F16 values always do.
var (
	bf16SIMD = newSIMDFormat(formats.BF16, 0x007F, 0x7F7F, 0x7F80, 0xFF80,
		func(p int) (int, int) { return 2*(p&1) + p>>3, (p & 7) >> 1 },
		func(p int) (int, int) { return p & 1, p >> 1 }, 0x1p-40, 0x1p60,
		func(w uint16) float32 { return math.Float32frombits(uint32(w) << 16) }, &bf16Asm, &bf16Asm512)
	f16SIMD = newSIMDFormat(formats.F16, 0x03FF, 0x7BFF, 0x7C00, 0xFC00,
		func(p int) (int, int) { return p >> 2, p & 3 },
		func(p int) (int, int) { return p >> 3, p & 7 }, 0, math.Inf(1),
		func(w uint16) float32 { return f16Table()[w] }, &f16Asm, &f16Asm512)
)

// simd16 is the vector kernel of one 16-bit dtype, with its assembly loops
// or, when asm is false, its Go twins alone; l, when not nil, is the
// worker's lanes, reused block after block (lanes handed to the assembly
// through a function value escape: new ones would be allocated every time).
type simd16 struct {
	f   *simdFormat
	asm bool
	l   *simdLanes
}

// buf returns the lanes to fold into, emptied.
func (k simd16) buf() *simdLanes {
	l := k.l
	if l == nil {
		l = new(simdLanes)
	}
	l.reset()
	return l
}

func (k simd16) size() int { return 2 }

// countsFirst: F16 weights nearly always hold subnormals (below 6.1e-5);
// BF16 ones seldom hold zeros or subnormals.
func (k simd16) countsFirst() bool { return k.f.dt == formats.F16 }

func (k simd16) lanes(blk []byte, masked bool) laneTotals {
	l := k.buf()
	k.fill(blk, l, masked)
	return l.totals()
}

// fill folds a block into the lanes: whole groups of 16 by the assembly loop
// when there is one, the rest by the Go twin.
func (k simd16) fill(blk []byte, l *simdLanes, masked bool) {
	done := 0
	if groups := len(blk) / 32; k.asm && groups > 0 {
		if masked {
			k.f.loops().masked(&blk[0], groups, l, &k.f.consts)
		} else {
			k.f.loops().lanes(&blk[0], groups, l, &k.f.consts)
		}
		done = 16 * groups
	}
	simdLanesGo(k.f, blk, done, l, masked)
}

func (k simd16) narrow(blk []byte, counting bool) (laneTotals, bool) {
	l := k.buf()
	k.narrowFill(blk, l, counting)
	t, ok := l.narrowTotals(k.f)
	if !ok {
		return t, false
	}
	if lo, hi := k.finiteKeys(); t.kmin < lo || t.kmax > hi {
		return t, true // the caller folds the block again, masked
	}
	if amax := math.Max(-k.value(t.kmin), k.value(t.kmax)); amax >= k.f.narrowMax || amax != 0 && amax < k.f.narrowMin {
		return t, false
	}
	switch {
	case counting:
		t.zeros, t.nontiny = l.counts()
	case l.minMagnitude() <= k.f.tiny:
		k.countFill(blk, l)
		t.zeros, t.nontiny = l.counts()
	default:
		t.zeros, t.nontiny = 0, uint64(len(blk)/2)
	}
	return t, true
}

// narrowFill folds a block into the lanes with float32 sums, counting the
// zeros and subnormals or keeping the smallest magnitude: whole pairs of
// groups of 16 by the assembly loop when there is one, the rest by the Go
// twin.
func (k simd16) narrowFill(blk []byte, l *simdLanes, counting bool) {
	done := 0
	if pairs := len(blk) / 64; k.asm && pairs > 0 {
		if counting {
			k.f.loops().narrowCount(&blk[0], pairs, l, &k.f.consts)
		} else {
			k.f.loops().narrow(&blk[0], pairs, l, &k.f.consts)
		}
		done = 32 * pairs
	}
	simdNarrowGo(k.f, blk, done, l, counting)
}

// countFill counts the zeros and the magnitudes of at least the smallest
// normal of a block into the lanes: whole groups of 16 by the assembly loop
// when there is one, the rest by the Go twin.
func (k simd16) countFill(blk []byte, l *simdLanes) {
	done := 0
	if groups := len(blk) / 32; k.asm && groups > 0 {
		k.f.loops().count(&blk[0], groups, l, &k.f.consts)
		done = 16 * groups
	}
	simdCountGo(k.f, blk, done, l)
}

// simdCountGo is the twin of simdCount16 for elements from..end of blk.
func simdCountGo(f *simdFormat, blk []byte, from int, l *simdLanes) {
	for e := from; e < len(blk)/2; e++ {
		a := binary.LittleEndian.Uint16(blk[2*e:]) & 0x7FFF
		if a == 0 {
			l.zeros[e&15]++
		}
		if a > f.tiny {
			l.nontiny[e&15]++
		}
	}
}

// minMagnitude is the smallest magnitude the narrow loops met.
func (l *simdLanes) minMagnitude() uint16 {
	m := uint16(math.MaxUint16)
	for _, a := range l.amin {
		m = min(m, a)
	}
	return m
}

// counts adds up the zero and nontiny counters.
func (l *simdLanes) counts() (zeros, nontiny uint64) {
	for p := range 16 {
		zeros += uint64(l.zeros[p])
		nontiny += uint64(l.nontiny[p])
	}
	return zeros, nontiny
}

func (k simd16) dev(blk []byte, pivot float64, hasBad bool) (d, d2 float64) {
	l := k.buf()
	k.devFill(blk, pivot, l, hasBad)
	return laneSums(&l.sum, &l.sq)
}

// devFill adds the deviations from pivot of a block's finite values to the
// sums of the lanes (the assembly loop only takes blocks without NaN or
// infinity).
func (k simd16) devFill(blk []byte, pivot float64, l *simdLanes, hasBad bool) {
	done := 0
	if groups := len(blk) / 32; k.asm && !hasBad && groups > 0 {
		k.f.loops().dev(&blk[0], groups, pivot, l, &k.f.consts)
		done = 16 * groups
	}
	simdDevGo(k.f, blk, done, pivot, l)
}

func (k simd16) value(key int64) float64 { return float64(k.f.toF32(keyPattern16(int16(key)))) }
func (k simd16) finiteKeys() (lo, hi int64) {
	return int64(k.f.minKey), int64(k.f.maxKey)
}
func (k simd16) firstBad(blk []byte) int64 { return firstNonFinite16(blk, k.f.pinf) }

// firstNonFinite16 is the index of the first element of 16-bit data whose
// exponent bits (exp, the pattern of +Inf) are all ones, -1 when none: four
// elements at a time, by the exact test for a zero 16-bit lane in
// (w & exp) ^ exp, then one at a time from the word that has one.
func firstNonFinite16(blk []byte, exp uint16) int64 {
	const ones, highs = 0x0001000100010001, 0x8000800080008000
	m := uint64(exp) * ones
	i := 0
	for ; i+8 <= len(blk); i += 8 {
		t := binary.LittleEndian.Uint64(blk[i:])&m ^ m
		if (t-ones)&^t&highs != 0 {
			break
		}
	}
	for ; i+2 <= len(blk); i += 2 {
		if binary.LittleEndian.Uint16(blk[i:])&exp == exp {
			return int64(i / 2)
		}
	}
	return -1
}

// reset empties the lanes.
func (l *simdLanes) reset() {
	*l = simdLanes{}
	for p := range 16 {
		l.kmin[p], l.kmax[p] = math.MaxInt16, math.MinInt16
		l.smax[p], l.amin[p] = math.MinInt16, math.MaxUint16
	}
}

// narrowTotals reduces the lanes of the narrow loops. Their extremes are the
// largest raw sign-magnitude patterns: as int16 the nonnegative values sort
// in order before the negative ones (in reverse order), as uint16 the other
// way round; so when the block holds values of both signs the largest is the
// int16 maximum and the smallest the uint16 maximum. A NaN or an infinity of
// either sign is beyond one of them (t then has kmax beyond every finite
// key). ok is false when the block is finite and holds no nonnegative or no
// negative pattern: its extremes are not known. The counts are left to the
// caller.
func (l *simdLanes) narrowTotals(f *simdFormat) (t laneTotals, ok bool) {
	smax, umax := int16(math.MinInt16), uint16(0)
	for p := range 16 {
		smax, umax = max(smax, l.smax[p]), max(umax, l.umax[p])
	}
	t.sum, t.sq = laneSums(&l.sum, &l.sq)
	if smax > int16(f.finite) || umax > 0x8000|f.finite {
		t.kmin, t.kmax = math.MinInt64, math.MaxInt64
		return t, true
	}
	if smax < 0 || umax < 0x8000 {
		return t, false
	}
	t.kmin, t.kmax = int64(orderKey16(umax)), int64(orderKey16(uint16(smax)))
	return t, true
}

// totals reduces the lanes.
func (l *simdLanes) totals() laneTotals {
	t := laneTotals{kmin: math.MaxInt16, kmax: math.MinInt16}
	for p := range 16 {
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

// orderKey16 maps a sign-magnitude 16-bit float pattern to an int16 with the
// same order as the values (-0 just below +0; NaN beyond the infinities).
func orderKey16(w uint16) int16 { return int16(w ^ (uint16(int16(w)>>15) & 0x7FFF)) }

// keyPattern16 inverts orderKey16.
func keyPattern16(k int16) uint16 { return uint16(k) ^ (uint16(k>>15) & 0x7FFF) }

// simdLanesGo is the twin of the 16-bit assembly loops: it folds elements
// from..end of blk into the lanes exactly as they do (masked: NaN and
// infinities are counted and give +0 to the sums and nothing to the keys).
func simdLanesGo(f *simdFormat, blk []byte, from int, l *simdLanes, masked bool) {
	n := len(blk) / 2
	for e := from; e < n; e++ {
		w := binary.LittleEndian.Uint16(blk[2*e:])
		p := e & 15
		a := w & 0x7FFF
		if a == 0 {
			l.zeros[p]++
		}
		if a > f.tiny {
			l.nontiny[p]++
		}
		if masked && a > f.finite {
			l.bad[p]++
			switch w {
			case f.pinf:
				l.pinf[p]++
			case f.ninf:
				l.ninf[p]++
			}
			w = 0
		} else {
			k := orderKey16(w)
			l.kmin[p], l.kmax[p] = min(l.kmin[p], k), max(l.kmax[p], k)
		}
		x := float64(f.toF32(w))
		v, j := f.lane[p].v, f.lane[p].j
		l.sum[v][j] += x
		l.sq[v][j] = math.FMA(x, x, l.sq[v][j])
	}
}

// simdNarrowGo is the twin of the narrow loops (counting: of the counting
// ones): it folds elements from..end of blk (from is 0 or the end of the
// whole pairs of groups) as they do. The
// float32 lanes take the whole pairs in runs of narrowPairs from the first
// (the last run may be shorter), then the elements after them as one more
// run; after each run they are added up and added to the float64 lanes.
func simdNarrowGo(f *simdFormat, blk []byte, from int, l *simdLanes, counting bool) {
	n := len(blk) / 2
	whole := n &^ 31
	var s, q [2][2][8]float32 // [group of the pair][vector][lane]
	for e := from; e < n; e++ {
		w := binary.LittleEndian.Uint16(blk[2*e:])
		p := e & 15
		l.smax[p], l.umax[p] = max(l.smax[p], int16(w)), max(l.umax[p], w)
		if a := w & 0x7FFF; !counting {
			l.amin[p] = min(l.amin[p], a)
		} else {
			if a == 0 {
				l.zeros[p]++
			}
			if a > f.tiny {
				l.nontiny[p]++
			}
		}
		x := f.toF32(w)
		g, h, i := (e>>4)&1, f.narrowLane[p].h, f.narrowLane[p].i
		s[g][h][i] += x
		q[g][h][i] = fp32.FMA(x, x, q[g][h][i])
		if e+1 == n || e+1 <= whole && (e+1 == whole || (e+1-from)%(32*narrowPairs) == 0) {
			for i := range 8 {
				l.sum[i>>2][i&3] += float64((s[0][0][i] + s[0][1][i]) + (s[1][0][i] + s[1][1][i]))
				l.sq[i>>2][i&3] += float64((q[0][0][i] + q[0][1][i]) + (q[1][0][i] + q[1][1][i]))
			}
			s, q = [2][2][8]float32{}, [2][2][8]float32{}
		}
	}
}

// simdDevGo is the twin of the 16-bit deviation loops: it adds x - pivot and
// its square for the finite elements from..end of blk.
func simdDevGo(f *simdFormat, blk []byte, from int, pivot float64, l *simdLanes) {
	n := len(blk) / 2
	for e := from; e < n; e++ {
		w := binary.LittleEndian.Uint16(blk[2*e:])
		if w&0x7FFF > f.finite {
			continue
		}
		p := e & 15
		d := float64(f.toF32(w)) - pivot
		v, j := f.lane[p].v, f.lane[p].j
		l.sum[v][j] += d
		l.sq[v][j] = math.FMA(d, d, l.sq[v][j])
	}
}
