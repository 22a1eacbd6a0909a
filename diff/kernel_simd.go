package diff

import (
	"encoding/binary"
	"math"
	"sync"

	"github.com/ckpt-tool/ckpt/formats"
)

// The comparison kernels for two sides of the same BF16, F16 or F32 dtype
// take the values in groups of 8 pairs and fold each group, in one pass over
// the raw bytes, into the lanes of a diffLanes: ‖A‖², ‖B‖², ‖B−A‖² and A·B
// (each sum in float64, one fused multiply-add per term), max |B−A| and the
// count of pairs that are equal. On x86-64 with AVX2 and FMA the groups are
// folded by assembly (kernel_simd_amd64.s); everywhere else, and in the
// tests, by diffGroupsGo, its Go twin, which assigns every pair to the same
// lane and rounds every operation the same way, so the two agree to the bit.
//
// A group in which either side holds a NaN or an infinity is not folded: the
// loops stop before it and compareGroups hands its 8 pairs to slowPair, the
// plain path (compareValues), before resuming.
//
// For BF16 and F16 the narrow loops (kernel_narrow.go: float32 lanes with a
// float64 carry, within proven bounds) fold the groups in their range first,
// into the same diffLanes; these float64 loops take the groups they stop
// before.

// diffLanes are the per-lane partials of one kernel call. Element k of a group
// goes to lane k of the eight float64 lanes of each sum and of max, and to
// lane k mod 4 of same. The assembly addresses the fields by the offsets checked in
// TestDiffAsmOffsets.
type diffLanes struct {
	ssa, ssb, ssd, dot [8]float64
	max                [8]float64 // max |B−A|
	same               [4]uint64  // pairs with B−A = 0
}

// groupFolder folds up to groups groups of 8 pairs at a and b into l and
// returns how many it folded: all of them, or those before the first group
// that holds a NaN or an infinity on either side.
type groupFolder func(a, b []byte, groups int, l *diffLanes) int

// compareGroups compares the finite-heavy runs a and b of dtype dt (BF16,
// F16 or F32) with fold, and adds the result to s. narrow, when not nil (a
// narrow loop of kernel_narrow.go for BF16 or F16), folds the pairs of groups
// in its range first; the groups it stops before go to fold, a pair of groups
// at a time, and a group fold stops before to the plain path.
func compareGroups(dt formats.DType, narrow, fold groupFolder, a, b []byte, s *Stats) {
	w := dt.Size()
	n := min(len(a), len(b)) / w
	// The lanes go through the folders, function values, so they would
	// escape: one allocation per call (per sub-block of 8192 values), a few
	// percent of a comparison's time in the allocator and the garbage
	// collector. They are taken from a pool instead.
	l := lanesPool.Get().(*diffLanes)
	defer lanesPool.Put(l)
	*l = diffLanes{}
	folded, i := 0, 0
	for n-i >= 8 {
		take := (n - i) / 8
		if narrow != nil {
			g := narrow(a[i*w:n*w], b[i*w:n*w], take, l)
			folded += g
			i += 8 * g
			if n-i < 8 {
				break
			}
			take = min((n-i)/8, 2)
		}
		g := fold(a[i*w:n*w], b[i*w:n*w], take, l)
		folded += g
		i += 8 * g
		if g == take {
			continue
		}
		// The group at i holds a NaN or an infinity.
		for k := i; k < i+8; k++ {
			slowPair(diffValue(dt, a, k), diffValue(dt, b, k), s)
		}
		i += 8
	}
	for ; i < n; i++ {
		slowPair(diffValue(dt, a, i), diffValue(dt, b, i), s)
	}
	if folded == 0 {
		return
	}
	var ssa, ssb, ssd, dot, maxAbs float64
	var same uint64
	for k := range 8 {
		ssa += l.ssa[k]
		ssb += l.ssb[k]
		ssd += l.ssd[k]
		dot += l.dot[k]
	}
	for k := range 8 {
		maxAbs = math.Max(maxAbs, l.max[k])
	}
	for k := range 4 {
		same += l.same[k]
	}
	pairs := 8 * uint64(folded)
	foldFinite(s, pairs, pairs-same, ssa, ssb, ssd, dot, maxAbs)
}

// lanesPool holds the lanes of compareGroups calls.
var lanesPool = sync.Pool{New: func() any { return new(diffLanes) }}

// diffValue decodes element i of raw data of dtype dt (BF16, F16 or F32).
func diffValue(dt formats.DType, raw []byte, i int) float64 {
	switch dt {
	case formats.BF16:
		return float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16))
	case formats.F16:
		return f16Values()[binary.LittleEndian.Uint16(raw[2*i:])]
	}
	return float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
}

// diffNonFinite reports whether element i of raw (dtype dt) is a NaN or an
// infinity, on its exponent bits.
func diffNonFinite(dt formats.DType, raw []byte, i int) bool {
	switch dt {
	case formats.BF16:
		return binary.LittleEndian.Uint16(raw[2*i:])&0x7F80 == 0x7F80
	case formats.F16:
		return binary.LittleEndian.Uint16(raw[2*i:])&0x7C00 == 0x7C00
	}
	return binary.LittleEndian.Uint32(raw[4*i:])&0x7F800000 == 0x7F800000
}

// diffGroupsGo is the Go twin of the assembly loops, for dtype dt.
func diffGroupsGo(dt formats.DType) groupFolder {
	return func(a, b []byte, groups int, l *diffLanes) int {
		for g := 0; g < groups; g++ {
			base := 8 * g
			for k := base; k < base+8; k++ {
				if diffNonFinite(dt, a, k) || diffNonFinite(dt, b, k) {
					return g
				}
			}
			for k := range 8 {
				x, y := diffValue(dt, a, base+k), diffValue(dt, b, base+k)
				l.ssa[k] = math.FMA(x, x, l.ssa[k])
				l.ssb[k] = math.FMA(y, y, l.ssb[k])
				l.dot[k] = math.FMA(x, y, l.dot[k])
				d := y - x
				l.ssd[k] = math.FMA(d, d, l.ssd[k])
				ad := math.Abs(d)
				l.max[k] = math.Max(l.max[k], ad)
				if ad == 0 {
					l.same[k%4]++
				}
			}
		}
		return groups
	}
}
