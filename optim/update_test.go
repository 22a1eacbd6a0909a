package optim

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// updateInputs draws n elements of m, v and θ: Adam-like magnitudes, with
// zeros, subnormals, negative second moments and nonfinite values mixed in
// when odd is set.
func updateInputs(rng *rand.Rand, n int, odd bool) (m, v, t []float64) {
	m, v, t = make([]float64, n), make([]float64, n), make([]float64, n)
	special := []float64{0, math.Copysign(0, -1), 5e-324, -1e-310, math.Inf(1), math.Inf(-1), math.NaN(), 1e300, -3}
	for i := range n {
		m[i] = rng.NormFloat64() * math.Pow(10, -float64(rng.IntN(8)))
		v[i] = rng.Float64() * math.Pow(10, -float64(rng.IntN(12)))
		t[i] = rng.NormFloat64() * 0.02
		if odd && rng.IntN(7) == 0 {
			switch rng.IntN(3) {
			case 0:
				m[i] = special[rng.IntN(len(special))]
			case 1:
				v[i] = special[rng.IntN(len(special))]
			default:
				t[i] = special[rng.IntN(len(special))]
			}
		}
	}
	return m, v, t
}

func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

// TestUpdateSumsTwins checks the vector loop against its plain twin, bit for
// bit, over every length up to 67 and from running sums already started.
func TestUpdateSumsTwins(t *testing.T) {
	if !updateAsmOK {
		t.Skip("no vector loop on this CPU or architecture: updateSums is its twin")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, odd := range []bool{false, true} {
		for n := range 68 {
			for range 20 {
				m, v, th := updateInputs(rng, n, odd)
				k := &updateConsts{c1: 1 - math.Pow(0.9, 7), c2: 1 - math.Pow(0.999, 7), lr: rng.Float64() * 1e-3, eps: 1e-8}
				start := updateAcc{sumD: rng.Float64(), sumT: rng.Float64()}
				got, want := start, start
				updateSums(m, v, th, k, &got)
				updateSumsGo(m, v, th, k, &want)
				if !sameFloat(got.sumD, want.sumD) || !sameFloat(got.sumT, want.sumT) || got.neg != want.neg {
					t.Fatalf("n=%d odd=%v: vector loop %v, twin %v", n, odd, got, want)
				}
			}
		}
	}
}

// TestUpdateSumsOrder checks that the sums do not depend on how the elements
// are handed over: a parameter read in pieces of any length gives the sums
// of one pass.
func TestUpdateSumsOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	m, v, th := updateInputs(rng, 1000, false)
	k := &updateConsts{c1: 0.1, c2: 0.001, lr: 1e-4, eps: 1e-8}
	var whole updateAcc
	updateSumsGo(m, v, th, k, &whole)
	for _, step := range []int{1, 3, 4, 5, 64, 999} {
		var a updateAcc
		for i := 0; i < len(m); i += step {
			j := min(i+step, len(m))
			updateSums(m[i:j], v[i:j], th[i:j], k, &a)
		}
		if a != whole {
			t.Fatalf("pieces of %d: %v, one pass %v", step, a, whole)
		}
	}
}

// TestUpdateSumsReference checks the twin against the formula written out
// with one rounding per operation.
func TestUpdateSumsReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	m, v, th := updateInputs(rng, 500, true)
	k := &updateConsts{c1: 0.19, c2: 0.002, lr: 3e-4, eps: 1e-8}
	var sumD, sumT float64
	for i := range m {
		q := m[i] / k.c1
		q = float64(k.lr * q)
		s := math.Sqrt(v[i]/k.c2) + k.eps
		d := q / s
		sumD = sumD + float64(d*d)
		sumT = sumT + float64(th[i]*th[i])
	}
	var a updateAcc
	updateSumsGo(m, v, th, k, &a)
	if !sameFloat(a.sumD, sumD) || !sameFloat(a.sumT, sumT) {
		t.Fatalf("twin %v, reference %v %v", a, sumD, sumT)
	}
}

// f32Bytes rounds xs to FP32 and returns them as little-endian bytes and
// widened back to float64.
func f32Bytes(xs []float64) ([]byte, []float64) {
	b := make([]byte, 4*len(xs))
	w := make([]float64, len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(x)))
		w[i] = float64(float32(x))
	}
	return b, w
}

// TestUpdateSums32 checks the FP32 loops, with FP32, BF16 and F16 weights:
// each vector loop against its twin, and the twin against the float64 loop
// over the same values widened (negative counts included).
func TestUpdateSums32(t *testing.T) {
	wide := []bool{false}
	if updateAVX512 {
		wide = append(wide, true) // both loops on this CPU
		defer func() { updateAVX512 = true }()
	}
	for _, w := range wide {
		updateAVX512 = w
		t.Run(fmt.Sprintf("avx512=%v", w), testUpdateSums32)
	}
}

func testUpdateSums32(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, wdt := range []formats.DType{formats.F32, formats.BF16, formats.F16} {
		for _, odd := range []bool{false, true} {
			for n := range 150 {
				m, v, th := updateInputs(rng, n, odd)
				mb, mw := f32Bytes(m)
				vb, vw := f32Bytes(v)
				tb, tw := weightBytes(wdt, th)
				k := &updateConsts{c1: 1 - math.Pow(0.9, 3), c2: 1 - math.Pow(0.999, 3), lr: 1e-4, eps: 1e-8}
				var got, twin, want updateAcc
				updateSums32(mb, vb, tb, wdt, n, k, &got)
				updateSums32Go(mb, vb, tb, wdt, n, k, &twin)
				updateSumsGo(mw, vw, tw, k, &want)
				if !sameFloat(got.sumD, twin.sumD) || !sameFloat(got.sumT, twin.sumT) || got.neg != twin.neg {
					t.Fatalf("%v n=%d odd=%v: vector loop %v, twin %v", wdt, n, odd, got, twin)
				}
				if !sameFloat(twin.sumD, want.sumD) || !sameFloat(twin.sumT, want.sumT) || twin.neg != want.neg {
					t.Fatalf("%v n=%d odd=%v: FP32 twin %v, float64 loop %v", wdt, n, odd, twin, want)
				}
				var neg uint64
				for _, x := range vw {
					if x < 0 {
						neg++
					}
				}
				if got := negativeF32(vb); got != neg || want.neg != neg {
					t.Fatalf("n=%d odd=%v: negativeF32 %d, the loop %d, want %d", n, odd, got, want.neg, neg)
				}
			}
		}
	}
}

// weightBytes stores xs in dt (FP32, BF16 or F16, little-endian) and returns
// the bytes and the stored values widened back to float64.
func weightBytes(dt formats.DType, xs []float64) ([]byte, []float64) {
	if dt == formats.F32 {
		return f32Bytes(xs)
	}
	b := make([]byte, 2*len(xs))
	for i, x := range xs {
		bits := math.Float32bits(float32(x))
		if dt == formats.BF16 {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(bits>>16))
		} else {
			binary.LittleEndian.PutUint16(b[2*i:], f16Bits(float32(x)))
		}
	}
	w := make([]float64, len(xs))
	inspect.DecodeFloat64(dt, b, w)
	return b, w
}

// f16Bits is a rough FP32 → F16 rounding (truncation; out of range to
// infinity, NaN kept): any pattern serves, the test decodes what it stored.
func f16Bits(x float32) uint16 {
	bits := math.Float32bits(x)
	sign := uint16(bits>>16) & 0x8000
	exp := int(bits>>23&0xFF) - 127 + 15
	switch {
	case bits&0x7FFFFFFF > 0x7F800000:
		return sign | 0x7E00
	case exp >= 31:
		return sign | 0x7C00
	case exp <= 0:
		return sign
	}
	return sign | uint16(exp)<<10 | uint16(bits>>13&0x3FF)
}

// TestNegativeF32Patterns checks negativeF32 at the edges of its range.
func TestNegativeF32Patterns(t *testing.T) {
	for _, c := range []struct {
		bits uint32
		neg  bool
	}{{0x00000000, false}, {0x80000000, false}, {0x80000001, true}, {0xBF800000, true}, {0xFF7FFFFF, true},
		{0xFF800000, true}, {0xFF800001, false}, {0xFFC00000, false}, {0xFFFFFFFF, false}, {0x7F800000, false}, {0x7FC00000, false}, {0x3F800000, false}} {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], c.bits)
		want := uint64(0)
		if c.neg {
			want = 1
		}
		if got := negativeF32(b[:]); got != want || (float64(math.Float32frombits(c.bits)) < 0) != c.neg {
			t.Errorf("%#08x: negativeF32 %d, want %d", c.bits, got, want)
		}
	}
}
