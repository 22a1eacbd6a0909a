package inspect

import (
	"context"

	"github.com/ckpt-tool/ckpt/formats"
)

// Options control a scan. The zero value scans with every CPU, 8 MiB chunks,
// pread and the default thresholds.
type Options struct {
	Workers    int                // goroutines; 0 means all CPUs (GOMAXPROCS)
	ChunkBytes int                // bytes per work item, rounded down to whole elements; 0 means DefaultChunkBytes
	Source     formats.SourceMode // how bytes are read; the zero value, Pread, is the faster for scans
	// Progress, when set, is called after each chunk with its byte count.
	// Calls come from the workers but never overlap.
	Progress    func(bytes int64)
	Thresholds  Thresholds    // outlier rules; a zero field means its default (see DefaultThresholds)
	TargetDType formats.DType // the dtype the model will be served in; F16 makes fp16 overflow an error
}

// ScanPath opens and scans the checkpoint at path.
func ScanPath(ctx context.Context, path string, opts Options) (*Result, error) {
	c, err := formats.Open(path)
	if err != nil {
		return nil, err
	}
	return Scan(ctx, c, opts)
}

// Scan reads every tensor of c in parallel and computes its statistics and
// findings. Files that break a read rule are reported as format findings;
// their intact tensors are still scanned. A file that cannot be read to the
// end (it shrank, an I/O error) is a format finding too, and the other files
// are still scanned. The error is non-nil only when the scan was cancelled.
func Scan(ctx context.Context, c *formats.Checkpoint, opts Options) (*Result, error) {
	r := &Result{Path: c.Path, Checkpoint: c}
	for _, f := range c.Files {
		n := 0
		if f.Parsed() {
			n = len(f.Tensors())
		}
		r.Files = append(r.Files, FileSummary{Path: f.Path, Bytes: f.Size, Tensors: n})
	}
	r.Findings = FormatFindings(c)
	for _, t := range c.Tensors {
		r.Tensors = append(r.Tensors, newTensorStats(t))
	}
	p := newPlan(c, r.Tensors, &opts)
	if err := p.run(ctx, opts.Workers, opts.Progress); err != nil {
		return nil, err
	}
	r.Findings = append(r.Findings, p.collect(r.Tensors)...)
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
