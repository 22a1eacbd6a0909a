package optim

import (
	"encoding/binary"
	"math"
)

// The inner loop of the predicted Adam update: for each element,
// d = lr·(m/c1) / (√(v/c2) + ε), and the running sums Σd² and Σθ², added in
// element order with one rounding per operation (no fused multiply-add), so
// that a parameter's sums are the same to the bit however its elements are
// handed over. updateSums is the vector loop where the CPU has one
// (update_amd64.s, four elements per step, the sums still added one element
// at a time in order) and updateSumsGo, its plain twin, elsewhere; the tests
// check that both give the same bits.

// updateConsts are a parameter's constants of the update.
type updateConsts struct {
	c1, c2, lr, eps float64
}

// updateAcc is a parameter's running sums: Σd² and Σθ².
type updateAcc struct {
	sumD, sumT float64
}

// updateSumsGo adds the first n elements of m (exp_avg), v (the second moment
// Adam divides by) and t (the weight) into a, in order.
func updateSumsGo(m, v, t []float64, k *updateConsts, a *updateAcc) {
	sumD, sumT := a.sumD, a.sumT
	t = t[:len(m)]
	v = v[:len(m)]
	for i := range m {
		// The explicit conversions keep every product rounded on its own:
		// the compiler may not fuse them into the sums.
		d := float64(k.lr*(m[i]/k.c1)) / (math.Sqrt(v[i]/k.c2) + k.eps)
		sumD += float64(d * d)
		sumT += float64(t[i] * t[i])
	}
	a.sumD, a.sumT = sumD, sumT
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

// updateSums32Go is updateSumsGo for FP32 moments given as their bytes
// (little-endian): m and v hold len(t) elements each.
func updateSums32Go(m, v []byte, t []float64, k *updateConsts, a *updateAcc) {
	var mb, vb [64]float64
	for i := 0; i < len(t); i += len(mb) {
		n := min(len(mb), len(t)-i)
		for j := range n {
			mb[j] = float64(math.Float32frombits(binary.LittleEndian.Uint32(m[4*(i+j):])))
			vb[j] = float64(math.Float32frombits(binary.LittleEndian.Uint32(v[4*(i+j):])))
		}
		updateSumsGo(mb[:n], vb[:n], t[i:i+n], k, a)
	}
}

// updateSums32 is updateSums32Go, through the vector loop when there is one.
func updateSums32(m, v []byte, t []float64, k *updateConsts, a *updateAcc) {
	n := 0
	if updateAsmOK && len(t) >= 4 {
		n = len(t) &^ 3
		updateSums32Asm(&m[0], &v[0], &t[0], n, k, a)
	}
	updateSums32Go(m[4*n:4*len(t)], v[4*n:4*len(t)], t[n:], k, a)
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
