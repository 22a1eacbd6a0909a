package ggml

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// The dequantizers held to ggml's own C code: scripts/ggml-reference.sh
// compiles ggml-quants.c (a pinned ggml release, from the Go module proxy)
// with scripts/ggml-dequant.c into a filter that dequantizes blocks as ggml
// does, and these tests compare its float32 values with Dequantize's and
// DequantizeRef's, bit for bit.

// notInPinnedGGML are the types ckpt decodes that the pinned ggml release
// does not dequantize: the plain types other than F16 and BF16 (F32 is read
// as it is; ggml converts no integer or F64 tensor to float32), Q8_1 (only a
// matmul operand in ggml), and NVFP4, Q1_0 and Q2_0, newer than the release.
// TestKnownValues and TestFastMatchesReference hold them.
var notInPinnedGGML = map[Type]string{
	F32:   "read as it is",
	F64:   "ggml has no F64 to F32 conversion",
	I8:    "an integer type",
	I16:   "an integer type",
	I32:   "an integer type",
	I64:   "an integer type",
	Q8_1:  "ggml has no dequantize_row_q8_1",
	NVFP4: "newer than the pinned ggml",
	Q1_0:  "newer than the pinned ggml",
	Q2_0:  "newer than the pinned ggml",
}

// ggmlDequant builds (once, cached) and returns the path of ggml's
// dequantizers as a filter; without Go or a C compiler the test stops
// through testenv.Missing.
func ggmlDequant(t *testing.T) string {
	t.Helper()
	script := filepath.Join(testenv.ModuleRoot(t), "scripts", "ggml-reference.sh")
	var stderr bytes.Buffer
	cmd := exec.Command("bash", script, "build")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		testenv.Missing(t, fmt.Sprintf("ggml's dequantizers could not be built (%v): %s", err, strings.TrimSpace(stderr.String())),
			"run scripts/ggml-reference.sh build (it needs Go and a C compiler; scripts/install-test-deps.sh runs it)")
	}
	return strings.TrimSpace(string(out))
}

// ggmlKinds runs the filter's --list: the types it decodes, with the values
// and bytes per block of ggml's own block structs.
func ggmlKinds(t *testing.T, bin string) map[Type][2]int {
	t.Helper()
	out, err := exec.Command(bin, "--list").Output()
	if err != nil {
		t.Fatalf("%s --list: %v", bin, err)
	}
	kinds := map[Type][2]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var id, elems, size int
		if _, err := fmt.Sscanf(line, "%d %d %d", &id, &elems, &size); err != nil {
			t.Fatalf("%s --list: line %q: %v", bin, line, err)
		}
		kinds[Type(id)] = [2]int{elems, size}
	}
	return kinds
}

// ggmlValues dequantizes src, whole blocks of ty, with ggml's C code.
func ggmlValues(t *testing.T, bin string, ty Type, src []byte) []float32 {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, fmt.Sprint(uint32(ty)))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(src), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: ggml's dequantizer: %v: %s", ty, err, stderr.String())
	}
	vals := make([]float32, stdout.Len()/4)
	if err := binary.Read(&stdout, binary.LittleEndian, vals); err != nil {
		t.Fatal(err)
	}
	return vals
}

// sourceBlocks are n random blocks of ty (randomBlocks: NaN, infinite,
// subnormal and zero scales among them), then a block of zero bytes and one
// of 0xff bytes.
func sourceBlocks(r *rand.Rand, ty Type, n int) []byte {
	tr := table[ty]
	src := randomBlocks(r, ty, n)
	src = append(src, make([]byte, tr.BlockBytes)...)
	return append(src, bytes.Repeat([]byte{0xff}, tr.BlockBytes)...)
}

// TestDequantizersMatchGGMLSource holds every dequantizer, fast and
// reference, to ggml's C code compiled from its source, bit for bit (NaN
// payloads and the signs of zeros included), and the type table to ggml's
// block structs.
func TestDequantizersMatchGGMLSource(t *testing.T) {
	bin := ggmlDequant(t)
	kinds := ggmlKinds(t, bin)
	r := rand.New(rand.NewPCG(41, 42))
	for _, ty := range Types() {
		if !ty.Decodes() {
			continue
		}
		kind, ok := kinds[ty]
		if reason, skip := notInPinnedGGML[ty]; skip {
			if ok {
				t.Errorf("%v is listed as not in the pinned ggml (%s), but ggml decodes it: check it", ty, reason)
			}
			continue
		}
		if !ok {
			t.Errorf("%v: decoded by ckpt, but not by ggml's filter (add it to scripts/ggml-dequant.c or notInPinnedGGML)", ty)
			continue
		}
		tr := table[ty]
		if kind != [2]int{tr.BlockElems, tr.BlockBytes} {
			t.Errorf("%v: %d values in %d bytes, ggml's block struct %d in %d", ty, tr.BlockElems, tr.BlockBytes, kind[0], kind[1])
			continue
		}
		src := sourceBlocks(r, ty, max(256, 65536/tr.BlockElems))
		want := ggmlValues(t, bin, ty, src)
		if len(want)*tr.BlockBytes != len(src)*tr.BlockElems {
			t.Fatalf("%v: ggml wrote %d values for %d bytes", ty, len(want), len(src))
		}
		for name, dequantize := range map[string]func(Type, []float32, []byte) int{"fast": Dequantize, "reference": DequantizeRef} {
			got := make([]float32, len(want))
			if n := dequantize(ty, got, src); n != len(got) {
				t.Fatalf("%v: %s wrote %d of %d values", ty, name, n, len(got))
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					blk := i / tr.BlockElems
					t.Errorf("%v: value %d (block %d): %s %v (%#08x), ggml %v (%#08x); block % x", ty, i, blk, name,
						got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]), src[blk*tr.BlockBytes:(blk+1)*tr.BlockBytes])
					break
				}
			}
		}
	}
}

// TestBadScalesMatchGGMLSource: for the types ckpt does not decode, whose
// scan rests on their scales, BadScales counts exactly the blocks in which
// ggml's C code writes a non-finite value, and such a block is non-finite
// throughout (as docs/gguf.md says).
func TestBadScalesMatchGGMLSource(t *testing.T) {
	bin := ggmlDequant(t)
	kinds := ggmlKinds(t, bin)
	r := rand.New(rand.NewPCG(43, 44))
	checked := 0
	for ty := range kinds {
		if ty.Decodes() {
			continue
		}
		checked++
		tr := table[ty]
		src := sourceBlocks(r, ty, 4096)
		vals := ggmlValues(t, bin, ty, src)
		var some, all int
		for b := 0; b < len(src)/tr.BlockBytes; b++ {
			bad := 0
			for _, v := range vals[b*tr.BlockElems : (b+1)*tr.BlockElems] {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					bad++
				}
			}
			if bad > 0 {
				some++
			}
			if bad == tr.BlockElems {
				all++
			}
		}
		if got := BadScales(ty, src); got != some || some != all || some == 0 {
			t.Errorf("%v: BadScales counts %d blocks; in ggml's values %d blocks hold a non-finite value and %d are non-finite throughout (of %d; want equal and nonzero)",
				ty, got, some, all, len(src)/tr.BlockBytes)
		}
	}
	if checked == 0 {
		t.Fatal("ggml's filter decodes none of the types ckpt checks by their scales")
	}
}
