package diff

import (
	"math"
	"sort"

	"github.com/ckpt-tool/ckpt/formats"
)

// Status is how a tensor changed between checkpoint A and checkpoint B.
type Status string

// The statuses of DESIGN.md's diff contract, plus Unreadable for a tensor whose
// bytes could not be read (a truncated file).
const (
	Identical    Status = "identical"     // byte-identical data, same dtype and shape
	Changed      Status = "changed"       // same dtype and shape, different bytes
	OnlyA        Status = "only_a"        // present in A only
	OnlyB        Status = "only_b"        // present in B only
	ShapeChanged Status = "shape_changed" // different shape (values not compared)
	DTypeChanged Status = "dtype_changed" // same shape, different dtype (values compared)
	Unreadable   Status = "unreadable"    // its bytes could not be read from A or B
)

// Stats are the element-wise comparison of two equally long runs of values.
// Norms, dot product and max_abs are over the positions where both values are
// finite; Appeared counts positions finite in A and not in B, Disappeared the
// reverse.
type Stats struct {
	Pairs       uint64  // positions finite in both
	SumSqA      float64 // Σa² over Pairs
	SumSqB      float64 // Σb² over Pairs
	SumSqD      float64 // Σ(b−a)² over Pairs
	Dot         float64 // Σab over Pairs
	MaxAbs      float64 // max |b−a| over Pairs
	Differ      uint64  // positions whose value (or class: finite, NaN, ±Inf) differs
	Appeared    uint64  // finite in A, NaN or ±Inf in B
	Disappeared uint64  // NaN or ±Inf in A, finite in B
	NonFiniteA  uint64  // NaN or ±Inf in A
	NonFiniteB  uint64  // NaN or ±Inf in B
}

// Merge adds o, which covers other positions, into s.
func (s *Stats) Merge(o *Stats) {
	s.Pairs += o.Pairs
	s.SumSqA += o.SumSqA
	s.SumSqB += o.SumSqB
	s.SumSqD += o.SumSqD
	s.Dot += o.Dot
	s.MaxAbs = math.Max(s.MaxAbs, o.MaxAbs)
	s.Differ += o.Differ
	s.Appeared += o.Appeared
	s.Disappeared += o.Disappeared
	s.NonFiniteA += o.NonFiniteA
	s.NonFiniteB += o.NonFiniteB
}

// RelL2 is ||B−A|| / ||A||; ok is false when it is undefined (no finite pair,
// or ||A|| = 0 while B differs).
func (s *Stats) RelL2() (float64, bool) {
	if s.SumSqD == 0 && s.Pairs > 0 {
		return 0, true
	}
	if s.SumSqA == 0 {
		return 0, false
	}
	return math.Sqrt(s.SumSqD) / math.Sqrt(s.SumSqA), true
}

// Cosine is the cosine similarity of A and B; ok is false when either norm is 0.
func (s *Stats) Cosine() (float64, bool) {
	if s.SumSqA == 0 || s.SumSqB == 0 {
		return 0, false
	}
	c := s.Dot / (math.Sqrt(s.SumSqA) * math.Sqrt(s.SumSqB))
	return math.Max(-1, math.Min(1, c)), true
}

// TensorDiff is the comparison of one tensor.
type TensorDiff struct {
	Name   string
	Status Status
	DTypeA formats.DType // "" when absent from A
	DTypeB formats.DType // "" when absent from B
	ShapeA []uint64
	ShapeB []uint64
	Bytes  int64 // bytes read from A and B to compare it
	// Compared is true when Stats hold an element-wise comparison: changed and
	// dtype_changed tensors, and identical ones whose norms were needed for an
	// aggregate. An identical tensor with Compared false was recognised by its
	// bytes alone.
	Compared bool
	Stats
	Reason string // why the tensor is unreadable
	// UsualError is, in a safetensors ↔ GGUF comparison, the relative error
	// the GGUF side's type usually costs (0 otherwise); Suspect marks a tensor
	// whose relative error is far above it (see CrossFormat).
	UsualError float64
	Suspect    bool
}

// RelL2 is the tensor's relative change; identical tensors have 0.
func (t *TensorDiff) RelL2() (float64, bool) {
	if t.Status == Identical {
		return 0, true
	}
	if !t.Compared {
		return 0, false
	}
	return t.Stats.RelL2()
}

// Cosine is the tensor's cosine similarity; identical tensors have 1 when
// their norm is known to be nonzero.
func (t *TensorDiff) Cosine() (float64, bool) {
	if !t.Compared {
		return 0, false
	}
	return t.Stats.Cosine()
}

// MaxAbsDiff is the largest element change over the finite pairs; identical
// tensors have 0; ok is false when no pair of values is finite.
func (t *TensorDiff) MaxAbsDiff() (float64, bool) {
	if t.Status == Identical {
		return 0, true
	}
	return t.MaxAbs, t.Compared && t.Pairs > 0
}

// Group aggregates the tensors of one layer (model.layers.N) or one role.
type Group struct {
	Key     string // layer ("model.layers.3"), role, or "" for tensors outside any layer
	Tensors int
	Changed int // tensors whose status is not identical
	Stats       // merged over the compared tensors and identical ones with known norms
}

// RelL2 of a group is ||ΔG|| / ||G_A|| over its compared tensors.
func (g *Group) RelL2() (float64, bool) {
	if g.Changed == 0 {
		return 0, true
	}
	return g.Stats.RelL2()
}

// Summary totals a comparison.
type Summary struct {
	Tensors      int
	Identical    int
	Changed      int
	OnlyA        int
	OnlyB        int
	ShapeChanged int
	DTypeChanged int
	Unreadable   int
	Appeared     uint64 // non-finite values appearing, over all tensors
	Disappeared  uint64 // non-finite values disappearing
	Bytes        int64  // tensor bytes of both sides
	All          Stats  // merged over every compared tensor
}

// Work is what a comparison cost: bytes read from the files and values
// decoded (none of either for a checkpoint compared with itself; a
// byte-identical copy is read once and decodes nothing). ScanBytesRead,
// set by CompareScan, is what B's scan read beyond the comparison's reads.
type Work struct {
	BytesRead, ValuesDecoded int64
	ScanBytesRead            int64
}

// Same reports whether A and B hold the same tensors with identical bytes.
func (s *Summary) Same() bool {
	return s.Identical == s.Tensors
}

// Result is the comparison of checkpoint A with checkpoint B.
type Result struct {
	A, B     string
	Tensors  []*TensorDiff // sorted by change, largest first (see SortByChange)
	Layers   []*Group      // by layer, in block order; tensors outside layers under key ""
	Roles    []*Group      // by role, sorted by key
	Summary  Summary
	Problems []formats.Problem // format problems of either input (a malformed file)
	Work     Work              // set by Compare
	// CrossFormat is set when one side is safetensors and the other GGUF.
	CrossFormat *CrossFormat
}

// RelL2 is the overall relative change ||B−A|| / ||A|| over the tensors
// present in both with the same shape; ok is false when there is none.
func (r *Result) RelL2() (float64, bool) {
	s := &r.Summary
	if s.Changed+s.DTypeChanged == 0 {
		return 0, s.Identical > 0
	}
	return s.All.RelL2()
}

// Tensor returns the diff of the named tensor, or nil.
func (r *Result) Tensor(name string) *TensorDiff {
	for _, t := range r.Tensors {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// statusRank orders statuses by how much attention they need.
var statusRank = map[Status]int{Unreadable: 0, ShapeChanged: 1, DTypeChanged: 2, OnlyA: 3, OnlyB: 4, Changed: 5, Identical: 6}

// SortByChange orders tensors: non-finite values appearing first (most first),
// then unreadable, shape, dtype and presence changes, then changed tensors by
// relative change (largest first; undefined ones first among them), identical
// last; ties by name.
func SortByChange(ts []*TensorDiff) {
	sort.SliceStable(ts, func(i, j int) bool {
		a, b := ts[i], ts[j]
		if a.Appeared != b.Appeared {
			return a.Appeared > b.Appeared
		}
		if statusRank[a.Status] != statusRank[b.Status] {
			return statusRank[a.Status] < statusRank[b.Status]
		}
		ra, oka := a.RelL2()
		rb, okb := b.RelL2()
		if oka != okb {
			return !oka
		}
		if ra != rb {
			return ra > rb
		}
		return a.Name < b.Name
	})
}
