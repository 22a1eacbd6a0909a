package inspect

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// plainCounts is the plainest possible reference for the non-finite counts of
// raw data of a float dtype: element by element through formats.Element and
// formats.Classify (formats.ClassifyComplex for a complex element), nothing
// shared with the kernels or with ReferenceStats' blocks.
func plainCounts(dt formats.DType, raw []byte) (count, nan, pinf, ninf uint64, first int64) {
	first = -1
	parts := 1
	if dt.Kind() == formats.KindComplex {
		parts = 2
	}
	n := formats.ElementCount(dt, len(raw))
	for i := 0; i < n; i++ {
		c := formats.Classify(formats.Element(dt, raw, parts*i))
		if parts == 2 {
			c = formats.ClassifyComplex(formats.Element(dt, raw, 2*i), formats.Element(dt, raw, 2*i+1))
		}
		count++
		switch c {
		case formats.ClassNaN:
			nan++
		case formats.ClassPosInf:
			pinf++
		case formats.ClassNegInf:
			ninf++
		default:
			continue
		}
		if first < 0 {
			first = int64(i)
		}
	}
	return count, nan, pinf, ninf, first
}

// TestClassifyComplex pins the rule for an element whose parts are not finite
// in different ways: NaN wins, then the real part's infinity, then the
// imaginary part's.
func TestClassifyComplex(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	cases := []struct {
		re, im float64
		want   formats.FloatClass
	}{
		{1, 2, formats.ClassFinite}, {0, 0, formats.ClassFinite},
		{nan, 1, formats.ClassNaN}, {1, nan, formats.ClassNaN}, {nan, inf, formats.ClassNaN}, {-inf, nan, formats.ClassNaN},
		{inf, 1, formats.ClassPosInf}, {1, inf, formats.ClassPosInf}, {inf, -inf, formats.ClassPosInf},
		{-inf, 1, formats.ClassNegInf}, {1, -inf, formats.ClassNegInf}, {-inf, inf, formats.ClassNegInf},
	}
	for _, c := range cases {
		if got := formats.ClassifyComplex(c.re, c.im); got != c.want {
			t.Errorf("ClassifyComplex(%v, %v) = %v, want %v", c.re, c.im, got, c.want)
		}
	}
}

// putComplex writes the element (re, im) of a complex dtype at element index i.
func putComplex(dt formats.DType, raw []byte, i int, re, im float64) {
	w := dt.Size() / 2
	encode(dt, raw[2*i*w:], re)
	encode(dt, raw[(2*i+1)*w:], im)
}

// TestComplexCountsPerElement: a complex tensor's counts are of elements.
// Elements non-finite in one part, in the other, or in both (NaN with Inf
// counted once, as NaN) are placed at known indices among finite ones, zeros
// and subnormal parts; the counts, the first index and the statistics must
// be exactly what was written, whatever the chunking.
func TestComplexCountsPerElement(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	rng := rand.New(rand.NewPCG(31, 32))
	for _, dt := range []formats.DType{formats.C64, formats.C128} {
		// The example: shape [4], NaN in element 3.
		small := make([]byte, 4*dt.Size())
		putComplex(dt, small, 3, nan, 0)
		if a := Stats(dt, small); a.Count != 4 || a.NaN != 1 || a.FirstBad != 3 || a.Finite != 3 || a.Zeros != 3 {
			t.Fatalf("%s [4] NaN at 3: %+v", dt, a)
		}
		if c := Coords([]uint64{4}, 3); !reflect.DeepEqual(c, []uint64{3}) {
			t.Fatalf("coords %v", c)
		}

		n := 40_000
		raw := make([]byte, n*dt.Size()+1)[1:] // odd address
		var sum, sumsq float64
		for i := range n {
			re, im := rng.NormFloat64(), rng.NormFloat64()
			putComplex(dt, raw, i, re, im)
		}
		perm := rng.Perm(n)
		pos := 0
		place := func(re, im float64) int {
			i := perm[pos]
			pos++
			putComplex(dt, raw, i, re, im)
			return i
		}
		first := n
		type kind struct {
			re, im float64
			k      int
		}
		bad := []kind{
			{nan, 1, 5}, {1, nan, 4}, {nan, nan, 3}, {nan, inf, 2}, {-inf, nan, 2}, // 16 NaN
			{inf, 1, 3}, {1, inf, 2}, {inf, -inf, 1}, // 6 +Inf
			{-inf, 1, 1}, {1, -inf, 2}, {-inf, inf, 1}, // 4 -Inf
		}
		for _, b := range bad {
			for range b.k {
				first = min(first, place(b.re, b.im))
			}
		}
		tiny := math.Ldexp(1, -140) // subnormal in F32 only
		if dt == formats.C128 {
			tiny = math.Ldexp(1, -1050)
		}
		zeros, subs := 0, 0
		for range 7 {
			place(0, 0)
			zeros++
		}
		for range 5 {
			place(math.Copysign(0, -1), 0)
			zeros++
		}
		for range 9 {
			place(0, 2) // one zero part: not a zero element
		}
		for range 6 {
			place(tiny, 0)
			subs++
		}
		for range 4 {
			place(3, -tiny)
			subs++
		}
		// The statistics: over both parts of the finite elements only.
		var parts []float64
		for i := range n {
			re, im := formats.Element(dt, raw, 2*i), formats.Element(dt, raw, 2*i+1)
			if formats.ClassifyComplex(re, im) == formats.ClassFinite {
				parts = append(parts, re, im)
				sum += re + im
				sumsq += re*re + im*im
			}
		}
		mean := sum / float64(len(parts))
		var dev float64
		for _, v := range parts {
			dev += (v - mean) * (v - mean)
		}
		for _, chunk := range []int{n, 4096, 777, 3} {
			acc := NewAcc()
			for off := 0; off < n; off += chunk {
				a := Stats(dt, raw[off*dt.Size():min(n, off+chunk)*dt.Size()])
				acc.Merge(&a)
			}
			what := fmt.Sprintf("%s chunk %d", dt, chunk)
			if acc.Count != uint64(n) || acc.NaN != 16 || acc.PosInf != 6 || acc.NegInf != 4 || acc.FirstBad != int64(first) ||
				acc.Finite != uint64(n-26) || acc.Zeros != uint64(zeros) || acc.Subnormal != uint64(subs) {
				t.Fatalf("%s: %+v; want count %d NaN 16 +Inf 6 -Inf 4 first %d zeros %d subnormal %d", what, acc, n, first, zeros, subs)
			}
			if acc.NonFinite() > acc.Count {
				t.Fatalf("%s: %d non-finite of %d", what, acc.NonFinite(), acc.Count)
			}
			// C64 parts go through the F32 kernel: its narrow loop's bounds
			// where it runs (kernel_simd.go).
			std := math.Sqrt(dev / float64(len(parts)))
			meanTol, sqRel, stdTol := 1e-12, 1e-9, 1e-9
			if statsRel(dt) > 1e-9 {
				meanTol, sqRel, stdTol = narrow32MeanStd*std, narrow32SumSqRel, narrow32M2Rel/2*std
			}
			if math.Abs(acc.Mean-mean) > meanTol || math.Abs(acc.SumSq-sumsq) > sqRel*sumsq ||
				math.Abs(acc.Std()-std) > stdTol {
				t.Fatalf("%s: mean %g sumsq %g std %g, want %g %g %g", what, acc.Mean, acc.SumSq, acc.Std(), mean, sumsq, math.Sqrt(dev/float64(len(parts))))
			}
			checkAcc(t, what, acc, ReferenceStats(dt, raw), statsRel(dt))
		}
	}
}

// writeLocated writes ts one after the other, from offset 5 (unaligned), into
// a file and returns it as a checkpoint whose tensors were located by a
// reader other than safetensors' (as a PyTorch reader locates them): the way
// dtypes safetensors lacks (C128) reach the engine.
func writeLocated(t *testing.T, path string, ts []testTensor) *formats.Checkpoint {
	t.Helper()
	data := make([]byte, 5)
	f := &formats.File{Path: path, Name: filepath.Base(path), Container: formats.ContainerTorch}
	for _, x := range ts {
		off := uint64(len(data))
		data = append(data, x.data...)
		f.Located = append(f.Located, &formats.Tensor{
			TensorInfo: formats.TensorInfo{Name: x.name, DType: x.dt, Shape: x.shape, Begin: off, End: uint64(len(data))},
			File:       f, Offset: int64(off)})
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f.Size = int64(len(data))
	return &formats.Checkpoint{Path: path, Dir: filepath.Dir(path), Files: []*formats.File{f}, Tensors: f.Located}
}

// TestScanFirstNonFiniteEveryFloatDType scans one tensor of every float dtype
// (C64 and C128 included), random bit patterns with some NaN and infinities,
// in chunks that split the tensors, with 1, 2 and 7 workers: the counts and
// the first non-finite index and coordinates must be the plain reference's
// (elements, not parts) and identical for every worker count.
func TestScanFirstNonFiniteEveryFloatDType(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	var ts []testTensor
	for _, dt := range formats.KnownDTypes() {
		if !dt.IsFloat() {
			continue
		}
		n := 6_000 // elements; a multiple of 4 for the sub-byte dtypes
		nbytes := n * dt.Bits() / 8
		raw := randomBits(rng, nbytes)
		// The IEEE dtypes: normal values, and some parts NaN or infinite at
		// random places (an element may get two), none at index 0. The 8-bit
		// dtypes keep random bits (a good share of them NaN), the sub-byte
		// ones have no non-finite encoding.
		if w := partBits(dt) / 8; w >= 2 {
			parts := nbytes / w
			raw = weightsLike(rng, dt, parts, 0, 1)
			for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.NaN(), math.Inf(1)} {
				for range 3 {
					encode(dt, raw[w*(2+rng.IntN(parts-2)):], v)
				}
			}
		}
		ts = append(ts, testTensor{"t." + string(dt), dt, []uint64{20, uint64(n / 20)}, raw})
	}
	c := writeLocated(t, filepath.Join(t.TempDir(), "floats.bin"), ts)
	var first *Result
	for _, w := range []int{1, 2, 7} {
		r, err := Scan(context.Background(), c, Options{Workers: w, ChunkBytes: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range ts {
			s := r.Tensors[i]
			if s.Skipped != "" {
				t.Fatalf("%s: skipped: %s", x.name, s.Skipped)
			}
			count, nan, pinf, ninf, fb := plainCounts(x.dt, x.data)
			if s.Count != count || s.Count != s.Numel || s.NaN != nan || s.PosInf != pinf || s.NegInf != ninf || s.FirstBad != fb {
				t.Fatalf("workers %d %s: count %d NaN %d +Inf %d -Inf %d first %d; plain %d %d %d %d %d (numel %d)",
					w, x.name, s.Count, s.NaN, s.PosInf, s.NegInf, s.FirstBad, count, nan, pinf, ninf, fb, s.Numel)
			}
			if fb >= 0 && !reflect.DeepEqual(s.FirstBadCoords, []uint64{uint64(fb) / x.shape[1], uint64(fb) % x.shape[1]}) {
				t.Fatalf("workers %d %s: coordinates %v of first %d", w, x.name, s.FirstBadCoords, fb)
			}
			if x.dt.Bits() >= 16 && (fb <= 0 || nan+pinf+ninf == 0) {
				t.Fatalf("%s: test data has first non-finite at %d, %d of them", x.name, fb, nan+pinf+ninf)
			}
			checkAcc(t, x.name, s.Acc, ReferenceStats(x.dt, x.data), statsRel(x.dt))
			if first != nil && fmt.Sprintf("%+v", *s) != fmt.Sprintf("%+v", *first.Tensors[i]) {
				t.Fatalf("workers %d: %s differs from one worker's:\n%+v\n%+v", w, x.name, s, first.Tensors[i])
			}
		}
		if first == nil {
			first = r
		}
	}
}

// The non-finite finding of a complex tensor counts complex elements, and
// says so; a real tensor's says values.
func TestNonFiniteFindingNamesWhatItCounts(t *testing.T) {
	for dt, want := range map[formats.DType]string{formats.C64: "1 of 4 complex elements are not finite", formats.C128: "1 of 4 complex elements are not finite", formats.F32: "1 of 4 values are not finite"} {
		raw := make([]byte, 4*dt.Size())
		if dt == formats.F32 {
			copy(raw[12:], []byte{0, 0, 0xc0, 0x7f}) // NaN at index 3
		} else {
			putComplex(dt, raw, 3, math.NaN(), 0)
		}
		ts := &TensorStats{Name: "w", DType: dt, Shape: []uint64{4}, Numel: 4, Acc: Stats(dt, raw)}
		f := nonFiniteFinding(ts)
		if f == nil || !strings.Contains(f.Message, want) {
			t.Errorf("%s: %+v, want %q", dt, f, want)
		}
	}
}
