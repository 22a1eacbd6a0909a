package diff

import (
	"bytes"
	"encoding/binary"
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
		if !groupsAgree(dt, got, want, 1e-9) {
			t.Fatalf("%s kernel disagrees with the reference:\n got  %+v\n want %+v", dt, got, want)
		}
		var twin, wide Stats
		compareGroups(dt, narrowTwin(dt), diffGroupsGo(dt), a, b, &twin)
		if !groupsAgree(dt, twin, want, 1e-9) {
			t.Fatalf("%s group twin disagrees with the reference:\n got  %+v\n want %+v", dt, twin, want)
		}
		compareGroups(dt, nil, diffGroupsGo(dt), a, b, &wide)
		if !kernelAgrees(wide, want, 1e-9) {
			t.Fatalf("%s float64 group twin disagrees with the reference:\n got  %+v\n want %+v", dt, wide, want)
		}
		withNarrowISAs(func(isa string) { fuzzAsmAgainstTwin(t, isa, dt, a, b, twin) })
	})
}

// fuzzAsmAgainstTwin is FuzzCompareKernels's check of the assembly (with
// the narrow loops of isa) against the Go twin's result twin, to the bit.
func fuzzAsmAgainstTwin(t *testing.T, isa string, dt formats.DType, a, b []byte, twin Stats) {
	if asm := asmFolder(dt); asm != nil {
		var viaAsm Stats
		compareGroups(dt, asmNarrow(dt), asm, a, b, &viaAsm)
		if viaAsm != twin {
			t.Fatalf("%s %s: assembly and twin differ:\n asm  %+v\n twin %+v", isa, dt, viaAsm, twin)
		}
	}
	if dt != formats.F32 {
		inA, inB := narrowRangeGo(dt, a), narrowRangeGo(dt, b)
		if r := narrowRangeOf(dt); r != nil && (r(a) != inA || r(b) != inB) {
			t.Fatalf("%s %s: range pass says %v, %v; its twin %v, %v", isa, dt, r(a), r(b), inA, inB)
		}
		if k := inRangeKernel(dt); k != nil {
			// Arbitrary bytes are rarely in range throughout: the same
			// bytes brought into it (each pattern out of range given
			// the exponent of 1) are compared too.
			ia, ib := intoNarrowRange(dt, a), intoNarrowRange(dt, b)
			if inA && inB && (!bytes.Equal(ia, a) || !bytes.Equal(ib, b)) {
				t.Fatalf("%s: intoNarrowRange changed bytes in range", dt)
			}
			var viaIn, checking Stats
			k(ia, ib, &viaIn)
			fastKernel(dt, dt)(ia, ib, &checking)
			if viaIn != checking {
				t.Fatalf("%s %s: unchecked and checking narrow loops differ:\n unchecked %+v\n checking  %+v", isa, dt, viaIn, checking)
			}
		}
	}
}

// intoNarrowRange returns raw (dtype dt, BF16 or F16) with each pattern out
// of the narrow range given the exponent of 1, keeping its sign and
// mantissa.
func intoNarrowRange(dt formats.DType, raw []byte) []byte {
	out := append([]byte(nil), raw...)
	exp, one := uint16(0x7F80), uint16(0x3F80)
	if dt == formats.F16 {
		exp, one = 0x7C00, 0x3C00
	}
	for i := 0; i+1 < len(out); i += 2 {
		if p := binary.LittleEndian.Uint16(out[i:]); !narrowInRange(dt, p) {
			binary.LittleEndian.PutUint16(out[i:], p&^exp|one)
		}
	}
	return out
}

// narrowTwin is the Go twin of dt's narrow loop, nil for F32 (which has none).
func narrowTwin(dt formats.DType) groupFolder {
	if dt == formats.F32 {
		return nil
	}
	return diffNarrowGo(dt)
}

// groupsAgree is kernelAgrees for a group kernel of dtype dt: within the
// narrow loops' proven bounds (kernel_narrow.go) for BF16 and F16, within rel
// for F32.
func groupsAgree(dt formats.DType, a, b Stats, rel float64) bool {
	if dt == formats.F32 {
		return kernelAgrees(a, b, rel)
	}
	return narrowAgrees(a, b)
}

// narrowAgrees is kernelAgrees within the narrow loops' proven bounds: the
// sums of squares relatively, the dot product relative to ‖A‖‖B‖, and
// max |B−A| within one float32 rounding.
func narrowAgrees(a, b Stats) bool {
	return boundsAgree(a, b, narrowSumBound, narrowDiffBound, narrowDotBound, narrowMaxBound)
}

// kernelAgrees compares a kernel's statistics with the reference's: counts and
// MaxAbs exactly, the sums of squares (non-negative terms) relatively, and the
// dot product, whose terms can cancel, relative to the largest it could be
// (Cauchy–Schwarz: |dot| <= sqrt(SumSqA·SumSqB)), since summing in another order
// legitimately changes a cancelled result.
func kernelAgrees(a, b Stats, rel float64) bool {
	return boundsAgree(a, b, rel, rel, rel, 0)
}

// boundsAgree is kernelAgrees with a bound for each sum: sum for ‖A‖² and
// ‖B‖², diff for ‖B−A‖², dot for A·B (relative to ‖A‖‖B‖), and maxRel for
// max |B−A| (relative).
func boundsAgree(a, b Stats, sum, diff, dot, maxRel float64) bool {
	close := func(x, y, rel, scale float64) bool {
		return x == y || math.Abs(x-y) <= rel*scale
	}
	dotScale := math.Sqrt(math.Max(a.SumSqA, b.SumSqA)) * math.Sqrt(math.Max(a.SumSqB, b.SumSqB))
	return a.Pairs == b.Pairs && a.Differ == b.Differ && a.Appeared == b.Appeared && a.Disappeared == b.Disappeared &&
		a.NonFiniteA == b.NonFiniteA && a.NonFiniteB == b.NonFiniteB &&
		close(a.MaxAbs, b.MaxAbs, maxRel, math.Max(a.MaxAbs, b.MaxAbs)) &&
		close(a.SumSqA, b.SumSqA, sum, math.Max(a.SumSqA, b.SumSqA)) && close(a.SumSqB, b.SumSqB, sum, math.Max(a.SumSqB, b.SumSqB)) &&
		close(a.SumSqD, b.SumSqD, diff, math.Max(a.SumSqD, b.SumSqD)) && close(a.Dot, b.Dot, dot, dotScale)
}
