package inspect

import (
	"encoding/binary"
	"math"

	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// The Q8_0 integer kernel's inner loop, four blocks at a time: block i of a
// run is folded into lane i mod 4 of q8Lanes (its sum, sum of squares and
// zero count), so that the vector loop (ggmlFoldQ8_0Asm, AVX2 and F16C) and
// its Go twin here (ggmlFoldQ8_0Go) add the same terms in the same order and
// leave the same bits. A group of four is folded only when all four scales
// are finite and nonzero and none of its blocks could extend the pass's
// extremes (d·−128 and d·127 within them); the loop stops at any other group
// and intQ8_0 folds that one block by block (q8Group).

// q8Lanes is the state of a pass of intQ8_0 (the layout the vector loop
// reads: offsets 0, 32, 64, 96, 128, 160, 168).
type q8Lanes struct {
	sum, sq  [4]float64
	zeros    [4]uint64
	lo, hi   [4]float64 // the pass's extremes, the same in every lane
	neg, pos uint64     // 1 when a −0 or a +0 value occurs
}

// ggmlFoldQ8_0 folds the groups of four Q8_0 blocks of src (a multiple of
// 136 bytes) into l until one that q8Group must take; it returns how many
// groups it folded.
func ggmlFoldQ8_0(src []byte, l *q8Lanes) int {
	if ggmlFoldQ8_0AsmOK {
		return ggmlFoldQ8_0Vec(src, l)
	}
	return ggmlFoldQ8_0Go(src, l)
}

// q8Word is the q8Sums word of a Q8_0 block's quants.
func q8Word(b *[34]byte) uint64 { return tableSum32((*[32]byte)(b[2:]), &q8Sums) }

// ggmlFoldQ8_0Go is the Go twin of ggmlFoldQ8_0's vector loop.
func ggmlFoldQ8_0Go(src []byte, l *q8Lanes) int {
	g := 0
	for ; 136*g+136 <= len(src); g++ {
		grp := src[136*g : 136*g+136]
		var d [4]float64
		for k := range d {
			h := binary.LittleEndian.Uint16(grp[34*k:])
			if !f16Finite(h) || h&0x7fff == 0 {
				return g
			}
			d[k] = float64(ggml.F16ToF32(h))
			lo, hi := min(d[k]*-128, d[k]*127), max(d[k]*-128, d[k]*127)
			if lo < l.lo[k] || hi > l.hi[k] {
				return g
			}
		}
		for k := range d {
			l.fold(k, d[k], q8Word((*[34]byte)(grp[34*k:])))
		}
	}
	return g
}

// fold adds a block of scale d (finite, nonzero) and quant word t to lane k.
func (l *q8Lanes) fold(k int, d float64, t uint64) {
	l.sum[k] += d * (float64(t&0xffff) - 4096)
	l.sq[k] += d * d * float64(t>>32)
	z := t >> 16 & 0xff
	l.zeros[k] += z
	some, neg := uint64(-int64(z))>>63, math.Float64bits(d)>>63
	l.neg |= some & neg
	l.pos |= some &^ neg
}

// q8Group folds the blocks of grp (a group the loop stopped at, or the last
// blocks of the pass) one by one: a non-finite scale refuses the pass (false), a zero one goes to f
// value by value, the others to their lanes with their extremes.
func (l *q8Lanes) q8Group(f *intFold, grp []byte) bool {
	for k := 0; 34*k+34 <= len(grp); k++ {
		b := (*[34]byte)(grp[34*k:])
		h := binary.LittleEndian.Uint16(b[0:])
		if !f16Finite(h) {
			return false
		}
		d := float64(ggml.F16ToF32(h))
		if d == 0 {
			f.signedZeros(d, b[2:], func(c byte) int { return int(int8(c)) })
			continue
		}
		l.fold(k, d, q8Word(b))
		lo, hi := min(d*-128, d*127), max(d*-128, d*127)
		if lo < l.lo[0] || hi > l.hi[0] {
			qlo, qhi := 127, -128
			for _, c := range b[2:] {
				q := int(int8(c))
				qlo, qhi = min(qlo, q), max(qhi, q)
			}
			a, z := d*float64(qlo), d*float64(qhi)
			if d < 0 {
				a, z = z, a
			}
			for j := range l.lo {
				l.lo[j], l.hi[j] = min(l.lo[j], a), max(l.hi[j], z)
			}
		}
	}
	return true
}

// intQ8_0 is the integer kernel of Q8_0 (block: fp16 d, 32 int8 quants).
func intQ8_0(src []byte) (Acc, bool) {
	f := newIntFold()
	l := q8Lanes{lo: [4]float64{f.lo, f.lo, f.lo, f.lo}, hi: [4]float64{f.hi, f.hi, f.hi, f.hi}}
	groups := len(src) / 136
	for g := 0; g < groups; {
		g += ggmlFoldQ8_0(src[136*g:136*groups], &l)
		if g < groups {
			if !l.q8Group(&f, src[136*g:136*g+136]) {
				return Acc{}, false
			}
			g++
		}
	}
	// the last blocks (fewer than four), into lanes 0 to 2
	if !l.q8Group(&f, src[136*groups:len(src)/34*34]) {
		return Acc{}, false
	}
	f.n = 32 * uint64(len(src)/34) // every block's values (f counted the zero-scale ones)
	f.sum += (l.sum[0] + l.sum[1]) + (l.sum[2] + l.sum[3])
	f.sq += (l.sq[0] + l.sq[1]) + (l.sq[2] + l.sq[3])
	f.zeros += (l.zeros[0] + l.zeros[1]) + (l.zeros[2] + l.zeros[3])
	f.lo, f.hi = min(f.lo, l.lo[0]), max(f.hi, l.hi[0])
	f.negZero |= l.neg
	f.posZero |= l.pos
	return f.acc()
}
