package fp32

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// exactFMA rounds x·y + acc, computed exactly, once to float32.
func exactFMA(x, y, acc float32) float32 {
	p := new(big.Float).SetPrec(0).SetMode(big.ToNearestEven)
	p.SetPrec(200)
	p.Mul(big.NewFloat(float64(x)).SetPrec(200), big.NewFloat(float64(y)).SetPrec(200))
	p.Add(p, big.NewFloat(float64(acc)).SetPrec(200))
	r, _ := p.Float32()
	if r == 0 && p.Sign() == 0 {
		// An exact zero takes the sign IEEE 754 gives it: −0 only when both
		// the product and the addend are −0 (round to nearest).
		prod := float64(x) * float64(y)
		if math.Signbit(prod) && math.Signbit(float64(acc)) {
			return float32(math.Copysign(0, -1))
		}
		return 0
	}
	return r
}

func check(t *testing.T, x, y, acc float32) {
	t.Helper()
	got, want := FMA(x, y, acc), exactFMA(x, y, acc)
	if math.Float32bits(got) != math.Float32bits(want) {
		t.Fatalf("FMA(%g, %g, %g) = %g (%#08x), exact rounding gives %g (%#08x)",
			x, y, acc, got, math.Float32bits(got), want, math.Float32bits(want))
	}
}

// TestFMAMidpoints builds sums that fall exactly halfway between two float32
// values in float64, where rounding twice (float64, then float32) goes wrong
// and e must decide.
func TestFMAMidpoints(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		acc := float32(1 + r.Float64())
		ulp := math.Nextafter32(acc, 2) - acc
		// x·y = half an ulp of acc times (1+j·2⁻²³)(1−k·2⁻²³): with j = k
		// the product misses the midpoint by j²·2⁻⁴⁶ of it, below float64's
		// reach of the sum, so s lands on the midpoint and e decides.
		for j := float32(0); j < 4; j++ {
			x := ulp / 2 * (1 + j*0x1p-23)
			for k := float32(0); k < 4; k++ {
				for _, y := range []float32{1 - k*0x1p-23, 1 + k*0x1p-23, -(1 - k*0x1p-23)} {
					check(t, x, y, acc)
					check(t, x, y, -acc)
				}
			}
		}
	}
}

func TestFMARandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		x := math.Float32frombits(r.Uint32())
		y := math.Float32frombits(r.Uint32())
		acc := math.Float32frombits(r.Uint32())
		if x != x || y != y || acc != acc || math.IsInf(float64(x), 0) || math.IsInf(float64(y), 0) || math.IsInf(float64(acc), 0) {
			continue
		}
		// Keep the product within float64's exact range (the kernels' use).
		if e := math.Abs(float64(x) * float64(y)); e > 1e300 || (e != 0 && e < 1e-290) {
			continue
		}
		check(t, x, y, acc)
		// Near cancellation: acc ≈ −x·y.
		check(t, x, y, -float32(float64(x)*float64(y)))
	}
}

func FuzzFMA(f *testing.F) {
	f.Add(uint32(0x3f800001), uint32(0x33800000), uint32(0x3f800000))
	f.Add(uint32(0x80000000), uint32(0x00000000), uint32(0x80000000))
	f.Fuzz(func(t *testing.T, xb, yb, ab uint32) {
		x, y, acc := math.Float32frombits(xb), math.Float32frombits(yb), math.Float32frombits(ab)
		for _, v := range []float32{x, y, acc} {
			if v != v || math.IsInf(float64(v), 0) {
				return
			}
		}
		check(t, x, y, acc)
	})
}
