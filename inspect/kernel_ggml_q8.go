package inspect

import (
	"encoding/binary"
	"math"

	"github.com/ckpt-tool/ckpt/formats/ggml"
)

// The Q8_0, Q5_0 and Q4_0 integer kernels' inner loop, four blocks at a
// time: block i of a run is folded into lane i mod 4 of q8Lanes (its sum, sum
// of squares, zero count and extremes), so that the vector loop
// (ggmlFoldQ8_0Asm, AVX2 and F16C, after ggmlFoldQ8_0Asm512's eight blocks at
// a time where the CPU has AVX-512; ggmlFoldQ5_0Asm; ggmlFoldQ4_0Asm) and its
// Go twin here (ggmlFoldQ8_0Go, ggmlFoldQ5_0Go, ggmlFoldQ4_0Go) add the same
// terms in the same order and leave the same bits. A group of four is folded
// when all four scales are finite and nonzero; the loop stops at any other
// group and foldLanes folds that one block by block (q8Group, q5Group,
// q4Group).

// q8Lanes is the state of a pass of intQ8_0 (the layout the vector loop
// reads: offsets 0, 32, 64, 96, 128, 160, 168).
type q8Lanes struct {
	sum, sq  [4]float64
	zeros    [4]uint64
	lo, hi   [4]float64 // each lane's extremes
	neg, pos uint64     // 1 when a −0 or a +0 value occurs
}

// ggmlFoldQ8_0 folds the groups of four Q8_0 blocks of src (a multiple of
// 136 bytes) into l until one with a zero or non-finite scale; it returns how
// many groups it folded.
func ggmlFoldQ8_0(src []byte, l *q8Lanes) int {
	if ggmlFoldQ8_0AsmOK {
		return ggmlFoldQ8_0Vec(src, l)
	}
	return ggmlFoldQ8_0Go(src, l)
}

// ggmlFoldQ8_0Go is the Go twin of ggmlFoldQ8_0's vector loop.
func ggmlFoldQ8_0Go(src []byte, l *q8Lanes) int {
	g := 0
	for ; 136*g+136 <= len(src); g++ {
		grp := src[136*g : 136*g+136]
		for k := 0; k < 4; k++ {
			if h := binary.LittleEndian.Uint16(grp[34*k:]); !f16Finite(h) || h&0x7fff == 0 {
				return g
			}
		}
		for k := 0; k < 4; k++ {
			b := (*[34]byte)(grp[34*k:])
			l.fold(k, float64(ggml.F16ToF32(binary.LittleEndian.Uint16(b[0:]))), b)
		}
	}
	return g
}

// fold adds a Q8_0 block of scale d (finite, nonzero) to lane k.
func (l *q8Lanes) fold(k int, d float64, b *[34]byte) {
	t := tableSum32((*[32]byte)(b[2:]), &q8Sums)
	qlo, qhi := int8(127), int8(-128)
	for _, c := range b[2:] {
		qlo, qhi = min(qlo, int8(c)), max(qhi, int8(c))
	}
	l.add(k, d, int64(t&0xffff)-4096, int64(t>>32), t>>16&0xff, int(qlo), int(qhi))
}

// add adds a block of scale d (finite, nonzero) to lane k: d·Σq and d²·Σq²
// (both exact), its z zero quants, and its extremes d·qlo and d·qhi.
func (l *q8Lanes) add(k int, d float64, s1, s2 int64, z uint64, qlo, qhi int) {
	l.sum[k] += d * float64(s1)
	l.sq[k] += d * d * float64(s2)
	l.zeros[k] += z
	some, neg := uint64(-int64(z))>>63, math.Float64bits(d)>>63
	l.neg |= some & neg
	l.pos |= some &^ neg
	// the vector loop's VMINPD and VMAXPD, operand for operand
	a, c := float64(qlo)*d, float64(qhi)*d
	lo, hi := c, c
	if a < c {
		lo = a
	}
	if a > c {
		hi = a
	}
	if lo < l.lo[k] {
		l.lo[k] = lo
	}
	if hi > l.hi[k] {
		l.hi[k] = hi
	}
}

// q8Group folds the blocks of grp (a group the loop stopped at, or the last
// blocks of the pass) one by one: a non-finite scale refuses the pass
// (false), a zero one goes to f value by value, the others to their lanes.
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
		l.fold(k, d, b)
	}
	return true
}

// group is q5Group for Q5_0 blocks, q4Group for Q4_0 ones, q8Group for
// Q8_0 ones.
func (l *q8Lanes) group(ty ggml.Type, f *intFold, grp []byte) bool {
	switch ty {
	case ggml.Q5_0:
		return l.q5Group(f, grp)
	case ggml.Q4_0:
		return l.q4Group(f, grp)
	}
	return l.q8Group(f, grp)
}

// intQ8_0 is the integer kernel of Q8_0 (block: fp16 d, 32 int8 quants).
func intQ8_0(src []byte) (Acc, bool) {
	return foldLanes(src, ggml.Q8_0)
}

// foldLanes is an integer kernel over the lanes, of Q8_0, Q5_0 or Q4_0 blocks: the
// groups of four blocks of src by the type's fold until it stops, the group
// it stopped at and the last blocks by its group step, then the lanes added
// up in a fixed order. (The type picks the fold by a test rather than by a
// function value, so that the lanes stay on the stack.)
func foldLanes(src []byte, ty ggml.Type) (Acc, bool) {
	f := newIntFold()
	l := q8Lanes{lo: [4]float64{f.lo, f.lo, f.lo, f.lo}, hi: [4]float64{f.hi, f.hi, f.hi, f.hi}}
	tr, _ := ty.Traits()
	bsize := tr.BlockBytes
	gsize := 4 * bsize
	groups := len(src) / gsize
	for g := 0; g < groups; {
		switch ty {
		case ggml.Q5_0:
			g += ggmlFoldQ5_0(src[gsize*g:gsize*groups], &l)
		case ggml.Q4_0:
			g += ggmlFoldQ4_0(src[gsize*g:gsize*groups], &l)
		default:
			g += ggmlFoldQ8_0(src[gsize*g:gsize*groups], &l)
		}
		if g < groups {
			if !l.group(ty, &f, src[gsize*g:gsize*g+gsize]) {
				return Acc{}, false
			}
			g++
		}
	}
	// the last blocks (fewer than four), into lanes 0 to 2
	if !l.group(ty, &f, src[gsize*groups:len(src)/bsize*bsize]) {
		return Acc{}, false
	}
	f.n = 32 * uint64(len(src)/bsize) // every block's values (f counted the zero-scale ones)
	f.sum += (l.sum[0] + l.sum[1]) + (l.sum[2] + l.sum[3])
	f.sq += (l.sq[0] + l.sq[1]) + (l.sq[2] + l.sq[3])
	f.zeros += (l.zeros[0] + l.zeros[1]) + (l.zeros[2] + l.zeros[3])
	for k := range l.lo {
		f.lo, f.hi = min(f.lo, l.lo[k]), max(f.hi, l.hi[k]) // a zero's sign is settled by the flags
	}
	f.negZero |= l.neg
	f.posZero |= l.pos
	return f.acc()
}

// ggmlFoldQ5_0 folds the groups of four Q5_0 blocks of src (a multiple of 88
// bytes) into l until one with a zero or non-finite scale, as
// ggmlFoldQ8_0 does; it returns how many groups it folded.
func ggmlFoldQ5_0(src []byte, l *q8Lanes) int {
	if ggmlFoldQ8_0AsmOK {
		return ggmlFoldQ5_0Vec(src, l)
	}
	return ggmlFoldQ5_0Go(src, l)
}

// ggmlFoldQ5_0Go is the Go twin of ggmlFoldQ5_0's vector loop.
func ggmlFoldQ5_0Go(src []byte, l *q8Lanes) int {
	g := 0
	for ; 88*g+88 <= len(src); g++ {
		grp := src[88*g : 88*g+88]
		for k := 0; k < 4; k++ {
			if h := binary.LittleEndian.Uint16(grp[22*k:]); !f16Finite(h) || h&0x7fff == 0 {
				return g
			}
		}
		for k := 0; k < 4; k++ {
			b := (*[22]byte)(grp[22*k:])
			l.fold5(k, float64(ggml.F16ToF32(binary.LittleEndian.Uint16(b[0:]))), b)
		}
	}
	return g
}

// fold5 adds a Q5_0 block of scale d (finite, nonzero) to lane k: from its
// codes' sums Σc and Σc², Σ(c−16) and Σ(c−16)².
func (l *q8Lanes) fold5(k int, d float64, b *[22]byte) {
	var t uint64
	clo, chi := 31, 0
	for j := 0; j < 32; j++ {
		c := q5Code(b, j)
		t += q5Sums[c]
		clo, chi = min(clo, int(c)), max(chi, int(c))
	}
	c1, c2 := int64(t&0xffff), int64(t>>32)
	l.add(k, d, c1-16*32, c2-32*c1+256*32, t>>16&0xff, clo-16, chi-16)
}

// q5Group is q8Group for Q5_0 blocks.
func (l *q8Lanes) q5Group(f *intFold, grp []byte) bool {
	for k := 0; 22*k+22 <= len(grp); k++ {
		b := (*[22]byte)(grp[22*k:])
		h := binary.LittleEndian.Uint16(b[0:])
		if !f16Finite(h) {
			return false
		}
		d := float64(ggml.F16ToF32(h))
		if d == 0 {
			// every value ±0, of the sign of d XOR that of c−16
			for j := 0; j < 32; j++ {
				f.value(float32(int(q5Code(b, j))-16) * float32(d))
			}
			continue
		}
		l.fold5(k, d, b)
	}
	return true
}

// intQ4_0 is the integer kernel of Q4_0 (block: fp16 d, 16 bytes of 4-bit
// codes c; the value is (c−8)·d), folded four blocks at a time as Q8_0 is.
func intQ4_0(src []byte) (Acc, bool) {
	return foldLanes(src, ggml.Q4_0)
}

// ggmlFoldQ4_0 folds the groups of four Q4_0 blocks of src (a multiple of 72
// bytes) into l until one with a zero or non-finite scale, as ggmlFoldQ8_0
// does; it returns how many groups it folded.
func ggmlFoldQ4_0(src []byte, l *q8Lanes) int {
	if ggmlFoldQ8_0AsmOK {
		return ggmlFoldQ4_0Vec(src, l)
	}
	return ggmlFoldQ4_0Go(src, l)
}

// ggmlFoldQ4_0Go is the Go twin of ggmlFoldQ4_0's vector loop.
func ggmlFoldQ4_0Go(src []byte, l *q8Lanes) int {
	g := 0
	for ; 72*g+72 <= len(src); g++ {
		grp := src[72*g : 72*g+72]
		for k := 0; k < 4; k++ {
			if h := binary.LittleEndian.Uint16(grp[18*k:]); !f16Finite(h) || h&0x7fff == 0 {
				return g
			}
		}
		for k := 0; k < 4; k++ {
			b := (*[18]byte)(grp[18*k:])
			l.fold4(k, float64(ggml.F16ToF32(binary.LittleEndian.Uint16(b[0:]))), b)
		}
	}
	return g
}

// fold4 adds a Q4_0 block of scale d (finite, nonzero) to lane k: from its
// codes' q4Sums word (Σc, the codes 8, Σc²), Σ(c−8) and Σ(c−8)².
func (l *q8Lanes) fold4(k int, d float64, b *[18]byte) {
	t := tableSum16((*[16]byte)(b[2:]), &q4Sums)
	qlo, qhi := q4Range(b)
	c1, c2 := int64(t&0xffff), int64(t>>32)
	l.add(k, d, c1-8*32, c2-16*c1+64*32, t>>16&0xffff, qlo-8, qhi-8)
}

// q4Group is q8Group for Q4_0 blocks.
func (l *q8Lanes) q4Group(f *intFold, grp []byte) bool {
	for k := 0; 18*k+18 <= len(grp); k++ {
		b := (*[18]byte)(grp[18*k:])
		h := binary.LittleEndian.Uint16(b[0:])
		if !f16Finite(h) {
			return false
		}
		d := float64(ggml.F16ToF32(h))
		if d == 0 {
			f.signedZeros(d, b[2:], nil)
			continue
		}
		l.fold4(k, d, b)
	}
	return true
}
