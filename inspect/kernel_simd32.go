package inspect

import (
	"encoding/binary"
	"math"
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

// simd32 is the F32 vector kernel, with its assembly loops or, when asm is
// false, its Go twins alone; l, when not nil, is the worker's lanes (see
// simd16).
type simd32 struct {
	asm bool
	l   *simdLanes32
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
			f32Asm.masked(&blk[0], groups, l, f32Consts)
		} else {
			f32Asm.lanes(&blk[0], groups, l, f32Consts)
		}
		done = 16 * groups
	}
	simdLanes32Go(blk, done, l, masked)
}

// narrow: F32 has no narrow loops (the square of a float32 value is not
// exact in float32).
func (k simd32) narrow([]byte, bool) (laneTotals, bool) { return laneTotals{}, false }

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
		f32Asm.dev(&blk[0], groups, pivot, l, f32Consts)
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
	lanes, masked func(p *byte, groups int, l *simdLanes32, c *simdConsts32)
	dev           func(p *byte, groups int, pivot float64, l *simdLanes32, c *simdConsts32)
}
