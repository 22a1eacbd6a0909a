package diff

import (
	"context"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// Comparing and scanning in one pass. A checkpoint that is compared with its
// predecessor (ckpt watch) is also scanned; reading it once for each would
// read its bytes twice. CompareScan hands every chunk of B that the
// comparison reads to B's scan (inspect.ScanPlan) as it is read, before it
// is decoded for the comparison, so the scan folds the same bytes; the scan
// then reads only what the comparison did not: B's tensors that are not
// compared by value (only in B, of another shape, tied to another tensor),
// those at the same place of the same file on both sides when nothing
// changed (otherwise the bytes read from A for their norms serve), and scan
// chunks that straddle two comparison chunks (the two engines cut a tensor
// at the same places when their chunk sizes agree, except for sub-byte and
// ggml block types and dtype changes). Across formats (safetensors against
// GGUF), a safetensors B is compared under renamed copies of its tensors,
// which its scan reads itself.

// CompareScan compares a with b as Compare(ctx, a, b, opts) does and scans b
// as inspect.Scan(ctx, b, scan) does, reading b once for both: both results
// are those of the separate calls, to the bit. Result.Work.ScanBytesRead is
// what the scan read on its own. The error is non-nil when the comparison
// failed (see Compare) or the scan was cancelled.
func CompareScan(ctx context.Context, a, b *formats.Checkpoint, opts Options, scan inspect.Options) (*Result, *inspect.Result, error) {
	sp := inspect.NewScanPlan(b, scan)
	r, err := compare(ctx, a, b, opts, sp)
	if err != nil {
		return nil, nil, err
	}
	sr, err := sp.Finish(ctx)
	if err != nil {
		return nil, nil, err
	}
	r.Work.ScanBytesRead = sp.BytesRead()
	return r, sr, nil
}

// unchangedFiles lists the files of c that are still what c's headers
// describe (the scan engine's own check before it reads a file): only those
// feed the scan; the scan reads the others itself and reports them.
func unchangedFiles(c *formats.Checkpoint, srcs map[string]formats.Source) map[string]bool {
	ok := map[string]bool{}
	for _, f := range c.Files {
		src := srcs[f.Path]
		if src == nil {
			continue
		}
		if st, err := src.Stat(); err == nil && f.CheckUnchanged(st) == nil {
			ok[f.Path] = true
		}
	}
	return ok
}

// foldScan hands the bytes of B just read for task tk (scalars [s0, s1) of
// tb) to B's scan, when the comparison feeds one.
func (w *worker) foldScan(e *engine, tb *formats.Tensor, tk task, rb []byte) {
	if e.scan == nil || !e.scanFiles[tb.File.Path] {
		return
	}
	if w.scan == nil {
		w.scan = new(inspect.Folder)
	}
	lo, _ := byteRange(tb, tk.s0, tk.s1)
	e.scan.Fold(w.scan, tb, lo, rb)
}
