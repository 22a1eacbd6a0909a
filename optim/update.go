package optim

import (
	"encoding/binary"
	"math"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// The inner loop of the predicted Adam update: for each element,
// d = a·m / (√v + b) with a = lr·√c2/c1 and b = ε·√c2 (the same value as
// lr·(m/c1) / (√(v/c2) + ε), with one division and one square root instead
// of three and one), and the sums Σd² and Σθ², each operation rounded on its
// own (no fused multiply-add).
//
// The order of the sums is fixed by the element indices alone, so that a
// parameter's sums are the same to the bit however its elements are handed
// over and however many workers share them: a parameter is cut into ranges
// of sumRange elements from its first; within a range, lane j (0 to 7) adds
// the terms of the range's elements j, j+8, j+16, ... in that order, from 0;
// a range's partial sum is ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)); the
// partials are added in range order, from 0. (Blocked this way, the rounding
// error of a sum of n terms is bounded by about (sumRange/8 + 3 + n/sumRange)
// units in the last place instead of n for one running sum.)
//
// updateSums (float64 inputs) and updateSums32 (FP32 moments, the weight as
// stored; the quotient in FP32 where that is exact to 3·2⁻²⁴, see
// updateSums32Go) run the vector loops where the CPU has them
// (update_amd64.s: the eight lanes in one AVX-512 register or two AVX2 ones)
// and their plain twins, updateSumsGo and updateSums32Go, elsewhere and for
// the elements that do not fill a whole step; the tests check that both give
// the same bits.

// sumRange is the number of elements of a range of the sums (a multiple of
// 8). It fixes the order of the sums, so it is not a tuning knob: the tests
// lower it to cut small tensors into many ranges.
var sumRange int64 = 1 << 16

// updateConsts are a parameter's constants of the update: d = a·m / (√v + b);
// b32 is b rounded to FP32 and fast says it is a normal FP32 number, so that
// FP32 moments may take the FP32 route (updateSums32Go). (update_amd64.s
// knows this layout.)
type updateConsts struct {
	a, b float64
	b32  float32
	fast bool
}

// newUpdateConsts returns the constants for a group's lr, ε and betas at a
// step: a = lr·√c2/c1 and b = ε·√c2, with c1 = 1-β1^step and c2 = 1-β2^step.
func newUpdateConsts(lr, eps, beta1, beta2, step float64) updateConsts {
	c1, c2 := 1-math.Pow(beta1, step), 1-math.Pow(beta2, step)
	s2 := math.Sqrt(c2)
	k := updateConsts{a: lr * s2 / c1, b: eps * s2}
	k.b32 = float32(k.b)
	k.fast = normal32(k.b32) && k.b32 > 0
	return k
}

// normal32 says x is a normal FP32 number: finite, not zero, not subnormal.
func normal32(x float32) bool {
	ax := math.Abs(float64(x))
	return ax >= 0x1p-126 && ax <= math.MaxFloat32
}

// updateLanes is what the vector loops update: the eight lane sums of Σd²
// and of Σθ² of the open range, and how many elements of v were below zero.
// (update_amd64.s knows this layout.)
type updateLanes struct {
	d, t [8]float64
	neg  uint64
}

// updateAcc is a run of a parameter's elements being summed from the start
// of a range: the open range's lanes, how many of its elements were added
// (n), and the partial sums of the ranges closed so far, in order.
type updateAcc struct {
	updateLanes
	n     int64
	parts [][2]float64
}

// closeRange ends the open range: its partial sums join parts.
func (a *updateAcc) closeRange() {
	d, t := &a.d, &a.t
	a.parts = append(a.parts, [2]float64{
		((d[0] + d[1]) + (d[2] + d[3])) + ((d[4] + d[5]) + (d[6] + d[7])),
		((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7])),
	})
	a.d, a.t, a.n = [8]float64{}, [8]float64{}, 0
}

// finish closes the open range, if it holds elements (the parameter's last).
func (a *updateAcc) finish() {
	if a.n > 0 {
		a.closeRange()
	}
}

// sumParts adds range partials in order: Σd² and Σθ².
func sumParts(parts [][2]float64) (sumD, sumT float64) {
	for _, p := range parts {
		sumD += p[0]
		sumT += p[1]
	}
	return sumD, sumT
}

// updateSumsGo adds m (exp_avg), v (the second moment Adam divides by) and
// t (the weight), element by element, into a (t and v at least as long as
// m).
func updateSumsGo(m, v, t []float64, k *updateConsts, a *updateAcc) {
	t = t[:len(m)]
	v = v[:len(m)]
	for i := range m {
		if v[i] < 0 {
			a.neg++
		}
		// The explicit conversions keep every product rounded on its own:
		// the compiler may not fuse them into the sums.
		d := float64(k.a*m[i]) / (math.Sqrt(v[i]) + k.b)
		l := a.n & 7
		a.d[l] += float64(d * d)
		a.t[l] += float64(t[i] * t[i])
		if a.n++; a.n == sumRange {
			a.closeRange()
		}
	}
}

// vectorSpan splits the next n elements to add into a: head elements for the
// twin (up to lane 0 of a step of eight), then body (a multiple of 8, within
// the open range) for the vector loop; the caller adds the rest after.
func (a *updateAcc) vectorSpan(n int) (head, body int) {
	room := int(min(int64(n), sumRange-a.n))
	if r := int(a.n & 7); r != 0 {
		head = min(room, 8-r)
	}
	return head, (room - head) &^ 7
}

// advance records that the vector loop added n elements (within the range).
func (a *updateAcc) advance(n int) {
	if a.n += int64(n); a.n == sumRange {
		a.closeRange()
	}
}

// updateSums is updateSumsGo, through the vector loop when there is one.
func updateSums(m, v, t []float64, k *updateConsts, a *updateAcc) {
	if !updateAsmOK {
		updateSumsGo(m, v, t, k, a)
		return
	}
	v, t = v[:len(m)], t[:len(m)]
	for len(m) > 0 {
		head, body := a.vectorSpan(len(m))
		if body == 0 {
			head = min(len(m), 8)
		}
		updateSumsGo(m[:head], v[:head], t[:head], k, a)
		if body > 0 {
			updateSumsAsm(&m[head], &v[head], &t[head], body, k, &a.updateLanes)
			a.advance(body)
		}
		m, v, t = m[head+body:], v[head+body:], t[head+body:]
	}
}

// updateSums32Go adds n elements of FP32 moments and a weight of dtype wdt,
// all given as their bytes (little-endian), into a. Where k.fast, an
// element's quotient is computed in FP32, as Adam computes it on FP32
// moments: q = m / (√v + b32), each operation rounded to FP32, then
// d = a·q in float64. Its relative error is at most 3·2⁻²⁴ (four FP32
// roundings: √v, b32, the sum, the quotient) when q is a normal FP32 number,
// and only then is it taken (or when m is zero: q is then exactly zero, or
// NaN for a v that makes it NaN in float64 too): for any other q (infinite,
// NaN, subnormal, zero: an overflow, an underflow, a nonfinite or negative
// input) the element's d is updateSumsGo's float64 one. So every d² is within 6·2⁻²⁴
// (3.6e-7) of its exact value, and so is Σd², a sum of terms ≥ 0 (plus the
// float64 rounding of the sum): the ratio is within 1.8e-7 of the exact one
// (docs/optimizer.md). Nonfinite values take the float64 route, so they
// reach the sums as there.
func updateSums32Go(m, v, t []byte, wdt formats.DType, n int, k *updateConsts, a *updateAcc) {
	var tb [64]float64
	ws := wdt.Size()
	for i := 0; i < n; i += len(tb) {
		c := min(len(tb), n-i)
		inspect.DecodeFloat64(wdt, t[ws*i:ws*(i+c)], tb[:c])
		for j := range c {
			mf := math.Float32frombits(binary.LittleEndian.Uint32(m[4*(i+j):]))
			vf := math.Float32frombits(binary.LittleEndian.Uint32(v[4*(i+j):]))
			if vf < 0 {
				a.neg++
			}
			var d float64
			q := mf / (float32(math.Sqrt(float64(vf))) + k.b32)
			if k.fast && (normal32(q) || mf == 0) {
				d = float64(k.a * float64(q))
			} else {
				d = float64(k.a*float64(mf)) / (math.Sqrt(float64(vf)) + k.b)
			}
			l := a.n & 7
			a.d[l] += float64(d * d)
			a.t[l] += float64(tb[j] * tb[j])
			if a.n++; a.n == sumRange {
				a.closeRange()
			}
		}
	}
}

// updateSums32 is updateSums32Go, through a vector loop when there is one
// for wdt (FP32 and BF16 weights; F16 ones widened to FP32 first) and k.fast:
// sixteen elements a step in AVX-512 registers, or eight in AVX2 ones.
func updateSums32(m, v, t []byte, wdt formats.DType, n int, k *updateConsts, a *updateAcc) {
	if updateAsmOK && k.fast && wdt == formats.F16 {
		updateSums32F16(m, v, t, n, k, a)
		return
	}
	if !updateAsmOK || !k.fast || (wdt != formats.F32 && wdt != formats.BF16) {
		updateSums32Go(m, v, t, wdt, n, k, a)
		return
	}
	step := 8
	if update512OK {
		step = 16
	}
	ws := wdt.Size()
	for n > 0 {
		head, body := a.vectorSpan(n)
		body = body / step * step
		if body == 0 {
			head = min(n, 8)
		}
		updateSums32Go(m, v, t, wdt, head, k, a)
		m, v, t = m[4*head:], v[4*head:], t[ws*head:]
		if body > 0 {
			switch {
			case update512OK && wdt == formats.F32:
				updateSums32F32Asm512(&m[0], &v[0], &t[0], body, k, &a.updateLanes)
			case update512OK:
				updateSums32BF16Asm512(&m[0], &v[0], &t[0], body, k, &a.updateLanes)
			case wdt == formats.F32:
				updateSums32F32Asm(&m[0], &v[0], &t[0], body, k, &a.updateLanes)
			default:
				updateSums32BF16Asm(&m[0], &v[0], &t[0], body, k, &a.updateLanes)
			}
			a.advance(body)
			m, v, t = m[4*body:], v[4*body:], t[ws*body:]
		}
		n -= head + body
	}
}

// updateSums32F16 is updateSums32 for an F16 weight: the weight is widened
// to FP32 (exactly) a block at a time and handed to the FP32 loop.
func updateSums32F16(m, v, t []byte, n int, k *updateConsts, a *updateAcc) {
	var wide [512]float64
	var raw [4 * len(wide)]byte
	for i := 0; i < n; i += len(wide) {
		c := min(len(wide), n-i)
		inspect.DecodeFloat64(formats.F16, t[2*i:2*(i+c)], wide[:c])
		for j, x := range wide[:c] {
			binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(float32(x)))
		}
		updateSums32(m[4*i:4*(i+c)], v[4*i:4*(i+c)], raw[:4*c], formats.F32, c, k, a)
	}
}

// negativeF32 counts the FP32 values below zero in b (little-endian): a set
// sign bit on anything but a zero or a NaN.
func negativeF32(b []byte) uint64 {
	var n uint64
	for ; len(b) >= 4; b = b[4:] {
		// x in [0x80000001, 0xFF800000], without a branch: c < 0x7F800000.
		c := uint64(binary.LittleEndian.Uint32(b) - 0x80000001)
		n += (c - 0x7F800000) >> 63
	}
	return n
}
