package inspect

import (
	"encoding/binary"
	"math"

	"github.com/ckpt-tool/ckpt/formats"
)

// The vector kernel for the 16-bit floats (BF16, F16). Where the CPU has the
// instructions (see kernel_simd_amd64.go), a block of up to simdBlockElems
// elements is folded 16 at a time by an assembly loop into lanes: per
// element position, exact counts (zeros, magnitudes of at least the smallest
// normal, and on the masked pass NaN and infinities) and order keys of the
// extremes, and per float64 lane the sum and the sum of squares of the values
// widened exactly to float64. Go then reduces the lanes in a fixed order into
// the block's Acc, and blocks are merged in order, so the result depends only
// on the data, never on where it sits in memory or on the number of workers.
//
// A block is first folded on the assumption that it is all finite; the keys
// say afterwards whether it was (a NaN or an infinity has a key beyond every
// finite one), and only a block that was not is folded again by the masked
// loop, which counts the non-finite elements and keeps them out of the sums
// and the extremes.
//
// The sums are taken around zero, which gives the sum of squares for the L2
// norm directly; the squared deviations follow as sumsq - sum·mean when that
// cancels at most 10 of the 53 bits (the mean is not large against the
// spread), and otherwise from a second pass over the block, still in the
// cache, around the first pass's mean. Each float64 lane adds at most
// simdBlockElems/16 terms, so the sums are within 2048·2⁻⁵³ of exact and
// the deviations within 2¹⁰ times that: far inside the 1e-9 the statistics
// promise.
//
// Every loop has a Go twin (simdLanesGo, simdDevGo) that assigns elements to
// the same lanes in the same order and rounds the same way (math.FMA for the
// fused squares): the tests require the two to agree to the bit, and the
// twin also folds the elements after the last whole group of 16.

// simdBlockElems is how many elements one block of the vector kernel holds:
// few enough that a 16-bit lane counter cannot overflow (2048 per lane) and
// that the block is still in the L2 cache for a second pass.
const simdBlockElems = 32 << 10

// simdM2Cancel is the share of the sum of squares under which sumsq -
// sum·mean is not trusted for the squared deviations (2⁻¹⁰: at most 10
// bits cancel) and a second pass around the mean computes them.
const simdM2Cancel = 1.0 / 1024

// simdLanes is what the loops accumulate; the assembly knows its layout.
type simdLanes struct {
	sum, sq    [4][4]float64 // float64 lanes: sum of x and sum of x² (or of x - pivot and its square)
	kmin, kmax [16]int16     // order keys of the extremes per position (see orderKey16)
	zeros      [16]uint16    // ±0
	nontiny    [16]uint16    // magnitudes of at least the smallest normal (non-finite included)
	bad        [16]uint16    // NaN and infinities (masked loop only)
	pinf, ninf [16]uint16    // +Inf, -Inf (masked loop only)
}

// simdConsts are the bit patterns a loop classifies with, each repeated in
// the 16 lanes of a vector; the assembly knows the layout.
type simdConsts struct {
	abs, tiny, finite, pinf, ninf [16]uint16
}

// simdAsm holds the assembly loops of one dtype (nil where there are none).
type simdAsm struct {
	lanes, masked func(p *byte, groups int, l *simdLanes, c *simdConsts)
	dev           func(p *byte, groups int, pivot float64, l *simdLanes)
}

// simdFormat describes one 16-bit float dtype to the kernel.
type simdFormat struct {
	dt             formats.DType
	tiny, finite   uint16 // largest magnitude below the smallest normal; largest finite magnitude
	pinf, ninf     uint16
	vec            [4]int // the float64 lane vector of each quarter of a group of 16
	toF32          func(uint16) float32
	consts         simdConsts
	minKey, maxKey int16 // order keys of the smallest and largest finite values
	asm            *simdAsm
}

func newSIMDFormat(dt formats.DType, tiny, finite, pinf, ninf uint16, vec [4]int, toF32 func(uint16) float32, asm *simdAsm) *simdFormat {
	f := &simdFormat{dt: dt, tiny: tiny, finite: finite, pinf: pinf, ninf: ninf, vec: vec, toF32: toF32, asm: asm,
		minKey: orderKey16(0x8000 | finite), maxKey: orderKey16(finite)}
	for i := range 16 {
		f.consts.abs[i], f.consts.tiny[i], f.consts.finite[i] = 0x7FFF, tiny, finite
		f.consts.pinf[i], f.consts.ninf[i] = pinf, ninf
	}
	return f
}

// The two dtypes. VPUNPCKLWD/VPUNPCKHWD widen BF16 a 128-bit half at a time,
// so the second and third quarters of a group trade places; VCVTPH2PS widens
// F16 in order.
var (
	bf16SIMD = newSIMDFormat(formats.BF16, 0x007F, 0x7F7F, 0x7F80, 0xFF80, [4]int{0, 2, 1, 3},
		func(w uint16) float32 { return math.Float32frombits(uint32(w) << 16) }, &bf16Asm)
	f16SIMD = newSIMDFormat(formats.F16, 0x03FF, 0x7BFF, 0x7C00, 0xFC00, [4]int{0, 1, 2, 3},
		func(w uint16) float32 { return f16Table()[w] }, &f16Asm)
)

// simdKernel is the vector kernel of one dtype, with its assembly loops or,
// when asm is false, its Go twins alone.
type simdKernel struct {
	f   *simdFormat
	asm bool
}

// simdFor returns the kernel for dt when this CPU runs its assembly loops.
func simdFor(dt formats.DType) (simdKernel, bool) {
	switch {
	case dt == formats.BF16 && simdBF16OK:
		return simdKernel{bf16SIMD, true}, true
	case dt == formats.F16 && simdF16OK:
		return simdKernel{f16SIMD, true}, true
	}
	return simdKernel{}, false
}

// simdHandles reports whether the vector kernel serves dt on this CPU.
func simdHandles(dt formats.DType) bool {
	_, ok := simdFor(dt)
	return ok
}

// statsSIMD computes the statistics of raw data of dt with the vector
// kernel; ok is false (and the caller uses another kernel) when this CPU has
// none for dt.
func statsSIMD(dt formats.DType, raw []byte) (acc Acc, ok bool) {
	k, ok := simdFor(dt)
	if !ok {
		return Acc{}, false
	}
	return k.stats(raw), true
}

// stats folds raw data (a trailing odd byte is ignored) block by block.
func (k simdKernel) stats(raw []byte) Acc {
	acc := NewAcc()
	n := len(raw) / 2
	var l simdLanes
	for i := 0; i < n; i += simdBlockElems {
		m := min(simdBlockElems, n-i)
		b := k.block(raw[2*i:2*(i+m)], acc.FirstBad < 0, &l)
		acc.Merge(&b)
	}
	return acc
}

// block computes the accumulator of one block (FirstBad only when wantFirstBad).
func (k simdKernel) block(blk []byte, wantFirstBad bool, l *simdLanes) Acc {
	f := k.f
	n := uint64(len(blk) / 2)
	l.reset()
	k.fill(blk, l, false)
	kmin, kmax := l.keyRange()
	if kmin < f.minKey || kmax > f.maxKey {
		l.reset()
		k.fill(blk, l, true)
		kmin, kmax = l.keyRange()
	}
	var zeros, nontiny, bad, pinf, ninf uint64
	for p := range 16 {
		zeros += uint64(l.zeros[p])
		nontiny += uint64(l.nontiny[p])
		bad += uint64(l.bad[p])
		pinf += uint64(l.pinf[p])
		ninf += uint64(l.ninf[p])
	}
	b := NewAcc()
	b.Count, b.Zeros, b.Subnormal = n, zeros, n-nontiny-zeros
	b.NaN, b.PosInf, b.NegInf, b.Finite = bad-pinf-ninf, pinf, ninf, n-bad
	if bad > 0 && wantFirstBad {
		b.FirstBad = firstBad16(blk, class16(f.dt))
	}
	if b.Finite == 0 {
		return b
	}
	b.Min, b.Max = float64(f.toF32(keyPattern16(kmin))), float64(f.toF32(keyPattern16(kmax)))
	b.AbsMax = math.Max(-b.Min, b.Max)
	sum, sq := l.sums()
	fn := float64(b.Finite)
	mean := sum / fn
	b.SumSq = sq
	if m2 := sq - sum*mean; m2 >= sq*simdM2Cancel {
		b.Mean, b.M2 = mean, m2
		return b
	}
	// The mean is large against the spread: add the squared deviations
	// from the first pass's mean, and correct the mean by their sum.
	l.sum, l.sq = [4][4]float64{}, [4][4]float64{}
	k.dev(blk, mean, l, bad > 0)
	d, d2 := l.sums()
	b.Mean = mean + d/fn
	b.M2 = math.Max(0, d2-d*(d/fn))
	return b
}

// fill folds a block into the lanes: whole groups of 16 by the assembly loop
// when there is one, the rest by the Go twin.
func (k simdKernel) fill(blk []byte, l *simdLanes, masked bool) {
	done := 0
	if groups := len(blk) / 32; k.asm && groups > 0 {
		if masked {
			k.f.asm.masked(&blk[0], groups, l, &k.f.consts)
		} else {
			k.f.asm.lanes(&blk[0], groups, l, &k.f.consts)
		}
		done = 16 * groups
	}
	simdLanesGo(k.f, blk, done, l, masked)
}

// dev adds the deviations from pivot of a block's finite values to the sums
// of the lanes (the assembly loop only takes blocks without NaN or infinity).
func (k simdKernel) dev(blk []byte, pivot float64, l *simdLanes, hasBad bool) {
	done := 0
	if groups := len(blk) / 32; k.asm && !hasBad && groups > 0 {
		k.f.asm.dev(&blk[0], groups, pivot, l)
		done = 16 * groups
	}
	simdDevGo(k.f, blk, done, pivot, l)
}

// reset empties the lanes.
func (l *simdLanes) reset() {
	*l = simdLanes{}
	for p := range 16 {
		l.kmin[p], l.kmax[p] = math.MaxInt16, math.MinInt16
	}
}

// keyRange is the smallest and largest key over the lanes.
func (l *simdLanes) keyRange() (kmin, kmax int16) {
	kmin, kmax = math.MaxInt16, math.MinInt16
	for p := range 16 {
		kmin, kmax = min(kmin, l.kmin[p]), max(kmax, l.kmax[p])
	}
	return kmin, kmax
}

// sums adds up the float64 lanes in a fixed order.
func (l *simdLanes) sums() (sum, sq float64) {
	for v := range 4 {
		for j := range 4 {
			sum += l.sum[v][j]
			sq += l.sq[v][j]
		}
	}
	return sum, sq
}

// orderKey16 maps a sign-magnitude 16-bit float pattern to an int16 with the
// same order as the values (-0 just below +0; NaN beyond the infinities).
func orderKey16(w uint16) int16 { return int16(w ^ (uint16(int16(w)>>15) & 0x7FFF)) }

// keyPattern16 inverts orderKey16.
func keyPattern16(k int16) uint16 { return uint16(k) ^ (uint16(k>>15) & 0x7FFF) }

// simdLanesGo is the twin of the assembly loops: it folds elements from..end
// of blk into the lanes exactly as they do (masked: NaN and infinities are
// counted and give +0 to the sums and nothing to the keys).
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
		v, j := f.vec[p>>2], p&3
		l.sum[v][j] += x
		l.sq[v][j] = math.FMA(x, x, l.sq[v][j])
	}
}

// simdDevGo is the twin of the deviation loops: it adds x - pivot and its
// square for the finite elements from..end of blk.
func simdDevGo(f *simdFormat, blk []byte, from int, pivot float64, l *simdLanes) {
	n := len(blk) / 2
	for e := from; e < n; e++ {
		w := binary.LittleEndian.Uint16(blk[2*e:])
		if w&0x7FFF > f.finite {
			continue
		}
		p := e & 15
		d := float64(f.toF32(w)) - pivot
		v, j := f.vec[p>>2], p&3
		l.sum[v][j] += d
		l.sq[v][j] = math.FMA(d, d, l.sq[v][j])
	}
}
