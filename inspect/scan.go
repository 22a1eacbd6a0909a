package inspect

import (
	"context"
	"fmt"

	"github.com/ckpt-tool/ckpt/formats"
)

// Options control a scan.
type Options struct {
	Workers    int                // goroutines; 0 means all CPUs
	ChunkBytes int                // bytes per work item; 0 means the default
	Source     formats.SourceMode // how bytes are read
	Progress   func(bytes int64)  // called as bytes are scanned (from workers); may be nil
}

// ScanPath opens and scans the checkpoint at path.
func ScanPath(ctx context.Context, path string, opts Options) (*Result, error) {
	c, err := formats.Open(path)
	if err != nil {
		return nil, err
	}
	return Scan(ctx, c, opts)
}

// Scan reads every tensor of c and computes its statistics and findings. Files
// that break a read rule are reported as format findings; their intact tensors
// are still scanned. The error is non-nil only when the scan itself failed
// (I/O error, cancelled).
func Scan(ctx context.Context, c *formats.Checkpoint, opts Options) (*Result, error) {
	r := &Result{Path: c.Path, Checkpoint: c}
	for _, f := range c.Files {
		n := 0
		if f.Header != nil {
			n = len(f.Header.Tensors)
		}
		r.Files = append(r.Files, FileSummary{Path: f.Path, Bytes: f.Size, Tensors: n})
	}
	r.Findings = FormatFindings(c)
	for _, t := range c.Tensors {
		ts := &TensorStats{Name: t.Name, File: t.File.Path, DType: t.DType, Shape: t.Shape, Numel: t.Numel(), Acc: NewAcc()}
		r.Tensors = append(r.Tensors, ts)
		if t.Cut {
			ts.Skipped = "the file ends before this tensor does"
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data := make([]byte, t.Length())
		src, err := formats.OpenSource(t.File.Path, formats.Pread)
		if err != nil {
			return nil, err
		}
		_, err = src.ReadAt(data, t.Offset)
		src.Close()
		if err != nil {
			return nil, fmt.Errorf("reading tensor %q: %w", t.Name, err)
		}
		ts.Acc = ReferenceStats(t.DType, data)
		if ts.FirstBad >= 0 {
			ts.FirstBadCoords = Coords(t.Shape, uint64(ts.FirstBad))
		}
		if opts.Progress != nil {
			opts.Progress(t.Length())
		}
		if f := nonFiniteFinding(ts); f != nil {
			r.Findings = append(r.Findings, *f)
		}
	}
	SortFindings(r.Findings)
	r.summarize()
	return r, nil
}
