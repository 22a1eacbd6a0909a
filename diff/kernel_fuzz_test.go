package diff

import (
	"math"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

// FuzzCompareKernels checks each fast comparison kernel (BF16, F16, F32)
// against ReferenceCompare on arbitrary bytes: every special value, odd
// lengths, and data at any alignment. The group kernel's Go twin must agree
// with the reference too, and the assembly loops (where this CPU runs them)
// with the twin to the bit.
func FuzzCompareKernels(f *testing.F) {
	f.Add(uint8(0), uint8(0), []byte{0x80, 0x7F, 0xC1, 0x7F, 0, 0, 0x80, 0xFF}, []byte{0x80, 0x7F, 0, 0, 0, 0, 0x80, 0x3F})
	f.Add(uint8(1), uint8(1), []byte{0, 0x7C, 0, 0xFC, 1, 0, 0xFF, 0x7B, 9}, []byte{0, 0x7E, 0, 0x7C, 1, 0, 0, 0x3C, 7})
	f.Add(uint8(2), uint8(3), []byte{0, 0, 0xC0, 0x7F, 0, 0, 0x80, 0x3F, 1, 2, 3, 4}, []byte{0, 0, 0x80, 0x7F, 0, 0, 0x80, 0xBF, 1, 2, 3, 5})
	dts := []formats.DType{formats.BF16, formats.F16, formats.F32}
	f.Fuzz(func(t *testing.T, d, shift uint8, a, b []byte) {
		dt := dts[int(d)%len(dts)]
		if s := int(shift % 8); s < len(a) && s < len(b) {
			a, b = a[s:], b[s:]
		}
		n := min(len(a), len(b)) / dt.Size() * dt.Size()
		a, b = a[:n], b[:n]
		var got Stats
		fastKernel(dt, dt)(a, b, &got)
		want := ReferenceCompare(dt, a, dt, b)
		if !kernelAgrees(got, want, 1e-9) {
			t.Fatalf("%s kernel disagrees with the reference:\n got  %+v\n want %+v", dt, got, want)
		}
		var twin Stats
		compareGroups(dt, diffGroupsGo(dt), a, b, &twin)
		if !kernelAgrees(twin, want, 1e-9) {
			t.Fatalf("%s group twin disagrees with the reference:\n got  %+v\n want %+v", dt, twin, want)
		}
		if asm := asmFolder(dt); asm != nil {
			var viaAsm Stats
			compareGroups(dt, asm, a, b, &viaAsm)
			if viaAsm != twin {
				t.Fatalf("%s assembly and twin differ:\n asm  %+v\n twin %+v", dt, viaAsm, twin)
			}
		}
	})
}

// kernelAgrees compares a kernel's statistics with the reference's: counts and
// MaxAbs exactly, the sums of squares (non-negative terms) relatively, and the
// dot product, whose terms can cancel, relative to the largest it could be
// (Cauchy–Schwarz: |dot| <= sqrt(SumSqA·SumSqB)), since summing in another order
// legitimately changes a cancelled result.
func kernelAgrees(a, b Stats, rel float64) bool {
	close := func(x, y, scale float64) bool {
		return x == y || math.Abs(x-y) <= rel*scale
	}
	dotScale := math.Sqrt(math.Max(a.SumSqA, b.SumSqA)) * math.Sqrt(math.Max(a.SumSqB, b.SumSqB))
	return a.Pairs == b.Pairs && a.Differ == b.Differ && a.Appeared == b.Appeared && a.Disappeared == b.Disappeared &&
		a.NonFiniteA == b.NonFiniteA && a.NonFiniteB == b.NonFiniteB && a.MaxAbs == b.MaxAbs &&
		close(a.SumSqA, b.SumSqA, math.Max(a.SumSqA, b.SumSqA)) && close(a.SumSqB, b.SumSqB, math.Max(a.SumSqB, b.SumSqB)) &&
		close(a.SumSqD, b.SumSqD, math.Max(a.SumSqD, b.SumSqD)) && close(a.Dot, b.Dot, dotScale)
}
