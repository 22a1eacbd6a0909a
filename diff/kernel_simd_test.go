package diff

import (
	"encoding/binary"
	"math"
	"math/rand"
	"os"
	"regexp"
	"strconv"
	"testing"
	"unsafe"

	"github.com/ckpt-tool/ckpt/formats"
)

var simdDTypes = []formats.DType{formats.BF16, formats.F16, formats.F32}

// TestDiffAsmOffsets checks every offset kernel_simd_amd64.s and
// kernel_narrow512_amd64.s define (#define L_...) against the layout of
// diffLanes (unsafe.Offsetof), and that each field is as wide as what the
// loops move there: a field added, moved or resized on the Go side fails
// here, not as wrong sums. The argument frames are checked by go vet
// (asmdecl). It reads the .s files as text, so it runs on every
// architecture and with -tags noasm.
func TestDiffAsmOffsets(t *testing.T) {
	var l diffLanes
	want := map[string]struct{ off, size uintptr }{
		"L_SSA":  {unsafe.Offsetof(l.ssa), unsafe.Sizeof(l.ssa)},
		"L_SSB":  {unsafe.Offsetof(l.ssb), unsafe.Sizeof(l.ssb)},
		"L_SSD":  {unsafe.Offsetof(l.ssd), unsafe.Sizeof(l.ssd)},
		"L_DOT":  {unsafe.Offsetof(l.dot), unsafe.Sizeof(l.dot)},
		"L_MAX":  {unsafe.Offsetof(l.max), unsafe.Sizeof(l.max)},
		"L_SAME": {unsafe.Offsetof(l.same), unsafe.Sizeof(l.same)},
	}
	// The sums and max are two vectors (elements 0-3 and 4-7), same one.
	width := map[string]uintptr{"L_SSA": 64, "L_SSB": 64, "L_SSD": 64, "L_DOT": 64, "L_MAX": 64, "L_SAME": 32}
	// The AVX2 loops and the AVX-512 ones (kernel_narrow512_amd64.s) each
	// define the offsets and N_CARRY.
	for _, file := range []string{"kernel_simd_amd64.s", "kernel_narrow512_amd64.s"} {
		checkAsmOffsets(t, file, want, width)
	}
	if s := unsafe.Sizeof(l); s != unsafe.Offsetof(l.same)+32 {
		t.Errorf("diffLanes is %d bytes; its last vector ends at %d", s, unsafe.Offsetof(l.same)+32)
	}
}

// checkAsmOffsets checks the L_ offsets and N_CARRY that the assembly file
// defines against want and width (TestDiffAsmOffsets).
func checkAsmOffsets(t *testing.T, file string, want map[string]struct{ off, size uintptr }, width map[string]uintptr) {
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	defs := regexp.MustCompile(`(?m)^#define\s+(L_[A-Z0-9_]+)\s+(\d+)\b`).FindAllSubmatch(src, -1)
	seen := map[string]bool{}
	for _, d := range defs {
		name := string(d[1])
		off, _ := strconv.ParseUint(string(d[2]), 10, 64)
		f, ok := want[name]
		if !ok {
			t.Errorf("%s defines %s = %d, which this test does not know", file, name, off)
			continue
		}
		seen[name] = true
		if f.off != uintptr(off) {
			t.Errorf("%s is %d in %s; the Go field is at %d", name, off, file, f.off)
		}
		if f.size != width[name] {
			t.Errorf("%s, %s: the Go field is %d bytes; the loops move %d there", file, name, f.size, width[name])
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s no longer defines %s", file, name)
		}
	}
	if m := regexp.MustCompile(`(?m)^#define\s+N_CARRY\s+(\d+)\b`).FindSubmatch(src); m == nil {
		t.Errorf("%s no longer defines N_CARRY", file)
	} else if c, _ := strconv.Atoi(string(m[1])); c != narrowCarry {
		t.Errorf("N_CARRY is %d in %s; narrowCarry is %d", c, file, narrowCarry)
	}
}

// simdPair returns n random pairs of dtype dt: B a small update of A, with
// signed zeros, equal values, subnormals, huge values and (with special)
// NaN and infinities sprinkled on either side.
func simdPair(r *rand.Rand, dt formats.DType, n int, special bool) ([]byte, []byte) {
	w := dt.Size()
	a, b := make([]byte, n*w), make([]byte, n*w)
	put := func(raw []byte, i int, bitsv uint32) {
		if w == 2 {
			binary.LittleEndian.PutUint16(raw[2*i:], uint16(bitsv))
		} else {
			binary.LittleEndian.PutUint32(raw[4*i:], bitsv)
		}
	}
	enc := func(v float64) uint32 {
		switch dt {
		case formats.BF16:
			return math.Float32bits(float32(v)) >> 16
		case formats.F16:
			return uint32(binary.LittleEndian.Uint16(encode(formats.F16, []float64{v})))
		}
		return math.Float32bits(float32(v))
	}
	signBit := uint32(1) << (8*w - 1)
	for i := 0; i < n; i++ {
		x := r.NormFloat64() * 0.02
		pa, pb := enc(x), enc(x+r.NormFloat64()*1e-4)
		switch r.Intn(12) {
		case 0:
			pb = pa // equal
		case 1:
			pa, pb = 0, signBit // +0 against -0
		case 2:
			pa = uint32(r.Intn(1 << 8)) // a subnormal or zero
		case 3:
			pa, pb = r.Uint32()&(1<<(8*w)-1), r.Uint32()&(1<<(8*w)-1) // any patterns
		case 4:
			if special {
				exp := map[int]uint32{2: 0x7F80, 4: 0x7F800000}[w]
				if dt == formats.F16 {
					exp = 0x7C00
				}
				pb = exp | r.Uint32()&(1<<(8*w)-1) // NaN or infinity
			}
		}
		if !special {
			// no pattern with an all-ones exponent
			for _, p := range []*uint32{&pa, &pb} {
				if diffNonFinite(dt, binary.LittleEndian.AppendUint32(nil, *p), 0) {
					*p &^= 1 << (8*w - 2)
				}
			}
		}
		put(a, i, pa)
		put(b, i, pb)
	}
	return a, b
}

// TestDiffAsmMatchesGoTwin: on this CPU, the assembly loops and their Go twin
// fold the same groups into the same lanes, to the bit, whether or not the
// data holds NaN and infinities (where both stop at the same group).
func TestDiffAsmMatchesGoTwin(t *testing.T) { forEachNarrowISA(t, testDiffAsmMatchesGoTwin) }

func testDiffAsmMatchesGoTwin(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, dt := range simdDTypes {
		asm := asmFolder(dt)
		if asm == nil {
			t.Logf("%s: no assembly loop in this build or on this CPU; the Go twin alone is tested", dt)
			continue
		}
		twin := diffGroupsGo(dt)
		for round := 0; round < 200; round++ {
			n := 8 * (1 + r.Intn(300))
			a, b := simdPair(r, dt, n, round%2 == 1)
			// Start from the same non-zero lanes.
			var la, lt diffLanes
			for k := range la.ssa {
				la.ssa[k], la.dot[k] = float64(k), -float64(k)
			}
			lt = la
			ga, gt := asm(a, b, n/8, &la), twin(a, b, n/8, &lt)
			if ga != gt || la != lt {
				t.Fatalf("%s n=%d: assembly folded %d groups, twin %d\n asm  %+v\n twin %+v", dt, n, ga, gt, la, lt)
			}
			var sa, st Stats
			compareGroups(dt, asmNarrow(dt), asm, a, b, &sa)
			compareGroups(dt, narrowTwin(dt), twin, a, b, &st)
			if sa != st {
				t.Fatalf("%s n=%d: whole kernel differs\n asm  %+v\n twin %+v", dt, n, sa, st)
			}
		}
	}
}

// TestDiffGroupsMatchReference: the group kernel, with the assembly and with
// the Go twin, agrees with ReferenceCompare at every length and alignment:
// counts and max exactly, sums to 1e-12 (the dot product relative to its
// Cauchy–Schwarz bound).
func TestDiffGroupsMatchReference(t *testing.T) { forEachNarrowISA(t, testDiffGroupsMatchReference) }

func testDiffGroupsMatchReference(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for _, dt := range simdDTypes {
		folders := map[string][2]groupFolder{"twin": {narrowTwin(dt), diffGroupsGo(dt)}, "wide twin": {nil, diffGroupsGo(dt)}}
		if asm := asmFolder(dt); asm != nil {
			folders["asm"] = [2]groupFolder{asmNarrow(dt), asm}
			folders["wide asm"] = [2]groupFolder{nil, asm}
		}
		for round := 0; round < 100; round++ {
			n := r.Intn(2000)
			shift := r.Intn(4) * dt.Size() / 2 // misaligned starts too
			a, b := simdPair(r, dt, n+2, round%3 == 0)
			a, b = a[shift:][:n*dt.Size()], b[shift:][:n*dt.Size()]
			want := ReferenceCompare(dt, a, dt, b)
			for name, fold := range folders {
				var got Stats
				compareGroups(dt, fold[0], fold[1], a, b, &got)
				if ok := kernelAgrees(got, want, 1e-12); !ok && (fold[0] == nil || !narrowAgrees(got, want)) {
					t.Fatalf("%s %s n=%d shift=%d:\n got  %+v\n want %+v", dt, name, n, shift, got, want)
				}
			}
		}
	}
}

// TestFastKernelChoosesAsm: where the assembly loops exist, the comparison
// engine uses them (the Go kernels serve the other builds).
func TestFastKernelChoosesAsm(t *testing.T) { forEachNarrowISA(t, testFastKernelChoosesAsm) }

func testFastKernelChoosesAsm(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, dt := range simdDTypes {
		a, b := simdPair(r, dt, 1000, true)
		var viaFast, viaGo Stats
		fastKernel(dt, dt)(a, b, &viaFast)
		goKernel(dt)(a, b, &viaGo)
		if fold := asmFolder(dt); fold != nil {
			var viaAsm Stats
			compareGroups(dt, asmNarrow(dt), fold, a, b, &viaAsm)
			if viaFast != viaAsm {
				t.Errorf("%s: the engine's kernel is not the assembly one", dt)
			}
		} else if viaFast != viaGo {
			t.Errorf("%s: without assembly the engine's kernel is not the Go one", dt)
		}
	}
}
