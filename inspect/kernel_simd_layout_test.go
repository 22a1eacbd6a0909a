package inspect

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"unsafe"
)

// asmField is a struct field the assembly addresses by a constant offset: its
// offset and size as the Go compiler lays it out.
type asmField struct {
	off, size uintptr
}

// TestSIMDAsmOffsets checks every offset constant kernel_simd_amd64.h
// defines (#define L_... and C_...; the AVX2 and AVX-512 loops include it) against the layout of the Go structs
// the loops read and write (simdLanes, simdLanes32, simdConsts,
// simdConsts32), with unsafe.Offsetof: a field added, moved or resized on
// the Go side fails here, not as wrong numbers from the assembly. Each field
// must also be as wide as the vectors the loops move at its offset (one
// 32-byte vector; the float64 lanes four; the scratch two). The arguments'
// frame offsets are checked by go vet (asmdecl). The test reads the .s file
// as text, so it runs on every architecture and with -tags noasm.
func TestSIMDAsmOffsets(t *testing.T) {
	var l16 simdLanes
	var l32 simdLanes32
	var c16 simdConsts
	var c32 simdConsts32
	f := func(off, size uintptr) asmField { return asmField{off, size} }
	// Each constant, and every field it must match (in both structs where
	// the 16-bit and the F32 loops share it).
	want := map[string][]asmField{
		"L_SUM":     {f(unsafe.Offsetof(l16.sum), unsafe.Sizeof(l16.sum)), f(unsafe.Offsetof(l32.sum), unsafe.Sizeof(l32.sum))},
		"L_SQ":      {f(unsafe.Offsetof(l16.sq), unsafe.Sizeof(l16.sq)), f(unsafe.Offsetof(l32.sq), unsafe.Sizeof(l32.sq))},
		"L_KMIN":    {f(unsafe.Offsetof(l16.kmin), unsafe.Sizeof(l16.kmin)), f(unsafe.Offsetof(l32.kmin), unsafe.Sizeof(l32.kmin))},
		"L_KMAX":    {f(unsafe.Offsetof(l16.kmax), unsafe.Sizeof(l16.kmax)), f(unsafe.Offsetof(l32.kmax), unsafe.Sizeof(l32.kmax))},
		"L_ZEROS":   {f(unsafe.Offsetof(l16.zeros), unsafe.Sizeof(l16.zeros)), f(unsafe.Offsetof(l32.zeros), unsafe.Sizeof(l32.zeros))},
		"L_NONTINY": {f(unsafe.Offsetof(l16.nontiny), unsafe.Sizeof(l16.nontiny)), f(unsafe.Offsetof(l32.nontiny), unsafe.Sizeof(l32.nontiny))},
		"L_BAD":     {f(unsafe.Offsetof(l16.bad), unsafe.Sizeof(l16.bad)), f(unsafe.Offsetof(l32.bad), unsafe.Sizeof(l32.bad))},
		"L_PINF":    {f(unsafe.Offsetof(l16.pinf), unsafe.Sizeof(l16.pinf)), f(unsafe.Offsetof(l32.pinf), unsafe.Sizeof(l32.pinf))},
		"L_NINF":    {f(unsafe.Offsetof(l16.ninf), unsafe.Sizeof(l16.ninf)), f(unsafe.Offsetof(l32.ninf), unsafe.Sizeof(l32.ninf))},
		"L_SCRATCH": {f(unsafe.Offsetof(l16.scratch), unsafe.Sizeof(l16.scratch))},                                                  // the 16-bit loops only
		"L_SMAX":    {f(unsafe.Offsetof(l16.smax), unsafe.Sizeof(l16.smax)), f(unsafe.Offsetof(l32.smax), unsafe.Sizeof(l32.smax))}, // the narrow loops only
		"L_UMAX":    {f(unsafe.Offsetof(l16.umax), unsafe.Sizeof(l16.umax)), f(unsafe.Offsetof(l32.umax), unsafe.Sizeof(l32.umax))},
		"L_AMIN":    {f(unsafe.Offsetof(l16.amin), unsafe.Sizeof(l16.amin)), f(unsafe.Offsetof(l32.amin), unsafe.Sizeof(l32.amin))},
		"C_ABS":     {f(unsafe.Offsetof(c16.abs), unsafe.Sizeof(c16.abs)), f(unsafe.Offsetof(c32.abs), unsafe.Sizeof(c32.abs))},
		"C_TINY":    {f(unsafe.Offsetof(c16.tiny), unsafe.Sizeof(c16.tiny)), f(unsafe.Offsetof(c32.tiny), unsafe.Sizeof(c32.tiny))},
		"C_FINITE":  {f(unsafe.Offsetof(c16.finite), unsafe.Sizeof(c16.finite)), f(unsafe.Offsetof(c32.finite), unsafe.Sizeof(c32.finite))},
		"C_PINF":    {f(unsafe.Offsetof(c16.pinf), unsafe.Sizeof(c16.pinf)), f(unsafe.Offsetof(c32.pinf), unsafe.Sizeof(c32.pinf))},
		"C_NINF":    {f(unsafe.Offsetof(c16.ninf), unsafe.Sizeof(c16.ninf)), f(unsafe.Offsetof(c32.ninf), unsafe.Sizeof(c32.ninf))},
		"C_HI":      {f(unsafe.Offsetof(c16.hi), unsafe.Sizeof(c16.hi))},         // BF16
		"C_MININT":  {f(unsafe.Offsetof(c32.minInt), unsafe.Sizeof(c32.minInt))}, // F32
		"C_ZERO":    {f(unsafe.Offsetof(c32.zero), unsafe.Sizeof(c32.zero))},     // F32
	}
	// How many bytes the loops move at each offset.
	width := map[string]uintptr{"L_SUM": 128, "L_SQ": 128, "L_SCRATCH": 64}

	const header = "kernel_simd_amd64.h"
	src, err := os.ReadFile(header)
	if err != nil {
		t.Fatal(err)
	}
	defRE := regexp.MustCompile(`(?m)^#define\s+([LC]_[A-Z0-9_]+)\s+(\d+)\b`)
	defs := defRE.FindAllSubmatch(src, -1)
	if len(defs) == 0 {
		t.Fatal("no #define L_/C_ offset found in " + header)
	}
	// The loops take them from the header alone.
	for _, s := range []string{"kernel_simd_amd64.s", "kernel_simd512_amd64.s"} {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^#include "` + regexp.QuoteMeta(header) + `"`).Match(b) {
			t.Errorf("%s does not include %s", s, header)
		}
		if d := defRE.FindSubmatch(b); d != nil {
			t.Errorf("%s defines %s itself: offsets belong in %s", s, d[1], header)
		}
	}
	seen := map[string]bool{}
	for _, d := range defs {
		name := string(d[1])
		off, err := strconv.ParseUint(string(d[2]), 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fields, ok := want[name]
		if !ok {
			t.Errorf(header+" defines %s = %d, which this test does not know: add the Go field it addresses", name, off)
			continue
		}
		seen[name] = true
		w := width[name]
		if w == 0 {
			w = 32
		}
		for _, fl := range fields {
			if fl.off != uintptr(off) {
				t.Errorf("%s is %d in "+header+"; the Go field is at offset %d", name, off, fl.off)
			}
			if fl.size != w {
				t.Errorf("%s: the Go field is %d bytes; the loops move %d there", name, fl.size, w)
			}
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf(header+" no longer defines %s", name)
		}
	}
	// The narrow loops' run length is the one the Go twin and the error
	// bound in kernel_simd.go assume.
	if m := regexp.MustCompile(`(?m)^#define\s+N_PAIRS\s+(\d+)\b`).FindSubmatch(src); m == nil {
		t.Error(header + " does not define N_PAIRS")
	} else if string(m[1]) != strconv.Itoa(narrowPairs) {
		t.Errorf("N_PAIRS is %s in "+header+", narrowPairs %d", m[1], narrowPairs)
	}
	if m := regexp.MustCompile(`(?m)^#define\s+N_PAIRS32\s+(\d+)\b`).FindSubmatch(src); m == nil {
		t.Error(header + " does not define N_PAIRS32")
	} else if string(m[1]) != strconv.Itoa(narrow32Pairs) {
		t.Errorf("N_PAIRS32 is %s in "+header+", narrow32Pairs %d", m[1], narrow32Pairs)
	}
	// The loops never write past the structs they are given.
	if s := unsafe.Sizeof(l16); s < unsafe.Offsetof(l16.amin)+32 {
		t.Errorf("simdLanes is %d bytes, shorter than its last vector's end", s)
	}
	if s := unsafe.Sizeof(l32); s != unsafe.Offsetof(l32.amin)+32 {
		t.Errorf("simdLanes32 is %d bytes; its last vector ends at %d", s, unsafe.Offsetof(l32.amin)+32)
	}
}
