//go:build amd64 && !noasm

package diff

import (
	"golang.org/x/sys/cpu"

	"github.com/ckpt-tool/ckpt/formats"
)

// The comparison loops run on x86-64 CPUs with AVX2 and FMA (and F16C for
// F16); they are in kernel_simd_amd64.s. Building with -tags noasm leaves
// them out (kernel_simd_other.go), as on other architectures.
var (
	diffAsmOK    = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	diffAsmF16OK = diffAsmOK && cpu.X86.HasF16C
)

// narrow512CPU: this CPU runs the AVX-512 narrow loops and range pass
// (kernel_narrow512_amd64.s): AVX-512 F, BW (VPERMW, the 16-bit compares),
// VL (EVEX on YMM registers) and DQ (VRANGEPS). narrow512OK says they are
// chosen over the AVX2 ones, to the same bits; the tests turn it off to run
// the AVX2 loops too.
var (
	narrow512CPU = diffAsmF16OK && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW &&
		cpu.X86.HasAVX512VL && cpu.X86.HasAVX512DQ
	narrow512OK = narrow512CPU
)

// asmFolder returns the assembly loop for dt, or nil when this CPU has none.
func asmFolder(dt formats.DType) groupFolder {
	switch {
	case dt == formats.BF16 && diffAsmOK:
		return func(a, b []byte, groups int, l *diffLanes) int {
			_, _ = a[16*groups-1], b[16*groups-1]
			return diffGroupsBF16(&a[0], &b[0], groups, l)
		}
	case dt == formats.F16 && diffAsmF16OK:
		return func(a, b []byte, groups int, l *diffLanes) int {
			_, _ = a[16*groups-1], b[16*groups-1]
			return diffGroupsF16(&a[0], &b[0], groups, l)
		}
	case dt == formats.F32 && diffAsmOK:
		return func(a, b []byte, groups int, l *diffLanes) int {
			_, _ = a[32*groups-1], b[32*groups-1]
			return diffGroupsF32(&a[0], &b[0], groups, l)
		}
	}
	return nil
}

// asmNarrow returns the narrow assembly loop for dt (kernel_narrow.go), or
// nil when this CPU or dtype has none.
func asmNarrow(dt formats.DType) groupFolder {
	switch {
	case dt == formats.BF16 && narrow512OK:
		return func(a, b []byte, groups int, l *diffLanes) int {
			_, _ = a[16*groups-1], b[16*groups-1]
			return diffNarrow512BF16(&a[0], &b[0], groups, l)
		}
	case dt == formats.F16 && narrow512OK:
		return func(a, b []byte, groups int, l *diffLanes) int {
			_, _ = a[16*groups-1], b[16*groups-1]
			return diffNarrow512F16(&a[0], &b[0], groups, l)
		}
	case dt == formats.BF16 && diffAsmOK:
		return func(a, b []byte, groups int, l *diffLanes) int {
			_, _ = a[16*groups-1], b[16*groups-1]
			return diffNarrowBF16(&a[0], &b[0], groups, l)
		}
	case dt == formats.F16 && diffAsmF16OK:
		return func(a, b []byte, groups int, l *diffLanes) int {
			_, _ = a[16*groups-1], b[16*groups-1]
			return diffNarrowF16(&a[0], &b[0], groups, l)
		}
	}
	return nil
}

// diffNarrowBF16 folds pairs of groups of 8 BF16 pairs at a and b into l in
// float32 lanes (kernel_narrow.go), stopping before a pair of groups holding a
// value out of the narrow range or when fewer than two groups are left; it
// returns the groups folded.
//
//go:noescape
func diffNarrowBF16(a, b *byte, groups int, l *diffLanes) int

// diffNarrowF16 is diffNarrowBF16 for F16.
//
//go:noescape
func diffNarrowF16(a, b *byte, groups int, l *diffLanes) int

// diffGroupsBF16 folds up to groups groups of 8 BF16 pairs at a and b into l,
// stopping before a group with a NaN or an infinity; it returns the groups folded.
//
//go:noescape
func diffGroupsBF16(a, b *byte, groups int, l *diffLanes) int

// diffGroupsF16 is diffGroupsBF16 for F16.
//
//go:noescape
func diffGroupsF16(a, b *byte, groups int, l *diffLanes) int

// diffGroupsF32 is diffGroupsBF16 for F32.
//
//go:noescape
func diffGroupsF32(a, b *byte, groups int, l *diffLanes) int

// asmNarrowIn returns the narrow assembly loop for dt without its range
// check, for runs whose every value on both sides is in the narrow range
// (narrowRangeOf): on them it folds exactly as asmNarrow's loop does. It is
// nil when this CPU or dtype has none: BF16 alone has one (F16's check, for
// NaN and infinities only, is cheap: measured, a range pass did not pay).
func asmNarrowIn(dt formats.DType) groupFolder {
	if dt != formats.BF16 || !diffAsmOK {
		return nil
	}
	if narrow512OK {
		return func(a, b []byte, groups int, l *diffLanes) int {
			_, _ = a[16*groups-1], b[16*groups-1]
			return diffNarrowIn512BF16(&a[0], &b[0], groups, l)
		}
	}
	return func(a, b []byte, groups int, l *diffLanes) int {
		_, _ = a[16*groups-1], b[16*groups-1]
		return diffNarrowInBF16(&a[0], &b[0], groups, l)
	}
}

// asmRange returns the assembly range pass for dt (narrowRangeOf), or nil
// when this CPU or dtype has no unchecked narrow loop to use it.
func asmRange(dt formats.DType) func(raw []byte) bool {
	if asmNarrowIn(dt) == nil {
		return nil
	}
	pass := narrowRange16
	if narrow512OK {
		pass = narrowRange512
	}
	return func(raw []byte) bool {
		blocks := len(raw) / 64
		if blocks > 0 && !pass(&raw[0], blocks, 0x587F, 0xA67F) { // see NCHECK_BF16
			return false
		}
		return narrowRangeGo(dt, raw[64*blocks:])
	}
}

// diffNarrowInBF16 is diffNarrowBF16 without the range check: every value
// of groups groups at a and b must be in the narrow range. It folds every
// pair of groups and returns their count (groups rounded down to even).
//
//go:noescape
func diffNarrowInBF16(a, b *byte, groups int, l *diffLanes) int

// narrowRange16 reports whether every 16-bit pattern of blocks blocks of 64
// bytes at p has a magnitude (pattern & 0x7FFF) at most hi and, with t the
// magnitude + 0x7FFF taken as int16, t at least lo as int16: for the bounds
// of NCHECK_BF16, whether all are in BF16's narrow range.
//
//go:noescape
func narrowRange16(p *byte, blocks int, hi, lo uint64) bool

// diffNarrow512BF16 is diffNarrowBF16 in AVX-512 registers
// (kernel_narrow512_amd64.s): the same result to the bit.
//
//go:noescape
func diffNarrow512BF16(a, b *byte, groups int, l *diffLanes) int

// diffNarrow512F16 is diffNarrowF16 in AVX-512 registers.
//
//go:noescape
func diffNarrow512F16(a, b *byte, groups int, l *diffLanes) int

// diffNarrowIn512BF16 is diffNarrowInBF16 in AVX-512 registers.
//
//go:noescape
func diffNarrowIn512BF16(a, b *byte, groups int, l *diffLanes) int

// narrowRange512 is narrowRange16 in AVX-512 registers.
//
//go:noescape
func narrowRange512(p *byte, blocks int, hi, lo uint64) bool
