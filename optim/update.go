package optim

import "math"

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
