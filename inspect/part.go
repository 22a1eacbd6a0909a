package inspect

import (
	"context"
	"fmt"

	"github.com/ckpt-tool/ckpt/formats"
)

// Splitting a scan. A scan of a checkpoint can be cut into N parts that run
// as separate processes (on other machines): Partition assigns every tensor
// to one part, ScanTensors scans the tensors of one part, and Assemble turns
// the statistics of every part into the Result Scan would have returned. A
// tensor is never split between parts, so its accumulator is the one a single
// scan computes, to the bit; the findings that compare tensors (outliers
// across a role) are computed once, in Assemble, over every tensor.

// PartWeight is how many bytes scanning t reads: its length when its bytes
// can be read (its elements' bytes for a strided view), 0 when it is skipped
// or tied to another tensor (whose scan it shares).
func PartWeight(t *formats.Tensor) int64 {
	switch {
	case t.File == nil || t.TiedTo != "" || unscannable(t, t.File.Size) != "":
		return 0
	case !t.Contiguous():
		return int64(t.Numel()) * int64(t.DType.Size())
	}
	return t.Length()
}

// Partition assigns each tensor of c (in checkpoint order) to one of n parts,
// balanced by bytes with a greedy rule: each tensor, in checkpoint order, goes
// to the part with the fewest bytes so far, the lowest-numbered part on a tie
// (weights are PartWeight). The rule depends only on the tensor list, so every
// process that opens the same checkpoint computes the same assignment, and no
// part holds more than total/n plus the largest tensor. The result is indexed
// like c.Tensors and holds part numbers 0..n-1.
func Partition(c *formats.Checkpoint, n int) []int {
	n = max(n, 1)
	load := make([]int64, n)
	out := make([]int, len(c.Tensors))
	for i, t := range c.Tensors {
		best := 0
		for k := 1; k < n; k++ {
			if load[k] < load[best] {
				best = k
			}
		}
		out[i] = best
		load[best] += PartWeight(t)
	}
	return out
}

// ReadFailure is a file that could not be read to the end during a scan: the
// first error, the tensor being read when it happened, and how many tensors
// of the file were left unscanned because of it.
type ReadFailure struct {
	File    string `json:"file"`
	Tensor  string `json:"tensor"`
	Err     string `json:"error"`
	Skipped int    `json:"skipped"`
}

// PartResult is the scan of some of the tensors of a checkpoint.
type PartResult struct {
	// Tensors is indexed like Checkpoint.Tensors; an entry is nil for a
	// tensor the part did not cover.
	Tensors  []*TensorStats
	Failures []ReadFailure // files that could not be read to the end
}

// ScanTensors scans the tensors of c for which sel returns true (sel gets the
// index into c.Tensors; nil selects every tensor), as Scan does, and returns
// their statistics without findings. The error is non-nil only when the scan
// was cancelled.
func ScanTensors(ctx context.Context, c *formats.Checkpoint, opts Options, sel func(int) bool) (*PartResult, error) {
	stats := make([]*TensorStats, len(c.Tensors))
	for i, t := range c.Tensors {
		stats[i] = newTensorStats(t)
	}
	p := newPlan(c, stats, &opts, sel)
	if err := p.run(ctx, opts.Workers, opts.Progress); err != nil {
		return nil, err
	}
	failures := p.collect(stats)
	if sel != nil {
		for i := range stats {
			if !sel(i) {
				stats[i] = nil
			}
		}
	}
	return &PartResult{Tensors: stats, Failures: failures}, nil
}

// Assemble builds the result of scanning c from the statistics of every
// tensor (indexed like c.Tensors, none nil) and the read failures of every
// part: format findings, read failures (one finding per file, the skipped
// tensors of every part counted together), non-finite values and the value
// rules of opts.Thresholds and opts.TargetDType, sorted, and the summary.
func Assemble(c *formats.Checkpoint, stats []*TensorStats, failures []ReadFailure, opts Options) (*Result, error) {
	if len(stats) != len(c.Tensors) {
		return nil, fmt.Errorf("%s: statistics of %d tensors for a checkpoint of %d", c.Path, len(stats), len(c.Tensors))
	}
	for i, ts := range stats {
		if ts == nil {
			return nil, fmt.Errorf("%s: no statistics for tensor %q", c.Path, c.Tensors[i].Name)
		}
	}
	r := &Result{Path: c.Path, Checkpoint: c, Tensors: stats}
	resolveTied(c, stats)
	for _, f := range c.Files {
		n := 0
		if f.Parsed() {
			n = len(f.Tensors())
		}
		r.Files = append(r.Files, FileSummary{Path: f.Path, Bytes: f.Size, Tensors: n})
	}
	r.Findings = FormatFindings(c)
	r.Findings = append(r.Findings, failureFindings(failures)...)
	for i, ts := range r.Tensors {
		if c.Tensors[i].TiedTo != "" {
			continue // reported under the tensor it is tied to
		}
		if f := nonFiniteFinding(ts); f != nil {
			r.Findings = append(r.Findings, *f)
		}
	}
	r.Findings = append(r.Findings, ValueFindings(r.Tensors, opts.Thresholds.withDefaults(), opts.TargetDType)...)
	SortFindings(r.Findings)
	r.summarize()
	return r, nil
}

// resolveTied gives each tied tensor the statistics of the tensor it shares
// its bytes with (scanned once, perhaps by another part).
func resolveTied(c *formats.Checkpoint, stats []*TensorStats) {
	byName := map[string]*TensorStats{}
	for i, t := range c.Tensors {
		if t.TiedTo == "" {
			byName[t.Name] = stats[i]
		}
	}
	for i, t := range c.Tensors {
		if t.TiedTo == "" {
			continue
		}
		if src, ok := byName[t.TiedTo]; ok {
			ts := stats[i]
			ts.Acc, ts.FirstBadCoords, ts.Skipped = src.Acc, src.FirstBadCoords, src.Skipped
		} else {
			stats[i].Skipped = "tied to " + t.TiedTo + ", which was not scanned"
		}
	}
}

// failureFindings is one format finding per file that could not be read to
// the end: failures of the same file (from several parts) are counted
// together and the first one listed names the error.
func failureFindings(failures []ReadFailure) []Finding {
	var order []string
	byFile := map[string]ReadFailure{}
	for _, f := range failures {
		if g, ok := byFile[f.File]; ok {
			g.Skipped += f.Skipped
			byFile[f.File] = g
			continue
		}
		order = append(order, f.File)
		byFile[f.File] = f
	}
	var out []Finding
	for _, path := range order {
		f := byFile[path]
		msg := fmt.Sprintf("reading %s failed: %s; %d tensor(s) of this file were not scanned", f.File, f.Err, f.Skipped)
		if f.Tensor != "" {
			msg = fmt.Sprintf("reading %s failed at tensor %q: %s; %d tensor(s) of this file were not scanned", f.File, f.Tensor, f.Err, f.Skipped)
		}
		out = append(out, Finding{Severity: string(formats.SevError), Check: CheckFormat, Tensor: f.Tensor, File: f.File, Message: msg})
	}
	return out
}

// PartStats rebuilds the statistics of tensor t from the accumulator a part
// computed for it (and why it was skipped, "" when it was scanned), as Scan
// would have left them.
func PartStats(t *formats.Tensor, acc Acc, skipped string) *TensorStats {
	ts := newTensorStats(t)
	ts.Acc, ts.Skipped = acc, skipped
	if skipped == "" {
		ts.finish()
	}
	return ts
}
