package optim

import (
	"encoding/binary"
	"math"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// The inner loop of the predicted Adam update: for each element,
// d = lr·(m/c1) / (√(v/c2) + ε), and the running sums Σd² and Σθ², added in
// element order with one rounding per operation (no fused multiply-add), so
// that a parameter's sums are the same to the bit however its elements are
// handed over. updateSums (float64 inputs) and updateSums32 (FP32 moments,
// the weight as stored) run the vector loops where the CPU has them
// (update_amd64.s: four or eight elements per step, the sums still added one
// element at a time in order) and their plain twins, updateSumsGo and
// updateSums32Go, elsewhere; the tests check that both give the same bits.

// updateConsts are a parameter's constants of the update.
type updateConsts struct {
	c1, c2, lr, eps float64
}

// updateAcc is a parameter's running sums: Σd² and Σθ², and how many
// elements of v were below zero.
type updateAcc struct {
	sumD, sumT float64
	neg        uint64
}

// updateSumsGo adds the first n elements of m (exp_avg), v (the second moment
// Adam divides by) and t (the weight) into a, in order.
func updateSumsGo(m, v, t []float64, k *updateConsts, a *updateAcc) {
	sumD, sumT, neg := a.sumD, a.sumT, a.neg
	t = t[:len(m)]
	v = v[:len(m)]
	for i := range m {
		if v[i] < 0 {
			neg++
		}
		// The explicit conversions keep every product rounded on its own:
		// the compiler may not fuse them into the sums.
		d := float64(k.lr*(m[i]/k.c1)) / (math.Sqrt(v[i]/k.c2) + k.eps)
		sumD += float64(d * d)
		sumT += float64(t[i] * t[i])
	}
	a.sumD, a.sumT, a.neg = sumD, sumT, neg
}

// updateSums is updateSumsGo, through the vector loop when there is one.
func updateSums(m, v, t []float64, k *updateConsts, a *updateAcc) {
	n := 0
	if updateAsmOK && len(m) >= 4 {
		n = len(m) &^ 3
		updateSumsAsm(&m[0], &v[0], &t[0], n, k, a)
	}
	updateSumsGo(m[n:], v[n:len(m)], t[n:len(m)], k, a)
}

// updateSums32Go is updateSumsGo for FP32 moments and a weight of dtype wdt,
// all given as their bytes (little-endian): n elements each.
func updateSums32Go(m, v, t []byte, wdt formats.DType, n int, k *updateConsts, a *updateAcc) {
	var mb, vb, tb [64]float64
	ws := wdt.Size()
	for i := 0; i < n; i += len(mb) {
		c := min(len(mb), n-i)
		for j := range c {
			mb[j] = float64(math.Float32frombits(binary.LittleEndian.Uint32(m[4*(i+j):])))
			vb[j] = float64(math.Float32frombits(binary.LittleEndian.Uint32(v[4*(i+j):])))
		}
		inspect.DecodeFloat64(wdt, t[ws*i:ws*(i+c)], tb[:c])
		updateSumsGo(mb[:c], vb[:c], tb[:c], k, a)
	}
}

// updateSums32 is updateSums32Go, through a vector loop when there is one
// for wdt (FP32 and BF16 weights): eight lanes with AVX-512, four without.
func updateSums32(m, v, t []byte, wdt formats.DType, n int, k *updateConsts, a *updateAcc) {
	done := 0
	if updateAVX512 && n >= 8 {
		switch wdt {
		case formats.F32:
			done = n &^ 7
			updateSums32F32Asm512(&m[0], &v[0], &t[0], done, k, a)
		case formats.BF16:
			done = n &^ 7
			updateSums32BF16Asm512(&m[0], &v[0], &t[0], done, k, a)
		}
	} else if updateAsmOK && n >= 4 {
		switch wdt {
		case formats.F32:
			done = n &^ 3
			updateSums32F32Asm(&m[0], &v[0], &t[0], done, k, a)
		case formats.BF16:
			done = n &^ 3
			updateSums32BF16Asm(&m[0], &v[0], &t[0], done, k, a)
		}
	}
	ws := wdt.Size()
	updateSums32Go(m[4*done:], v[4*done:], t[ws*done:], wdt, n-done, k, a)
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
