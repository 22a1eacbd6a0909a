package watch

import (
	"context"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// Checking one checkpoint in one pass. The scan of a new checkpoint and its
// comparison with the previous one share their reads (diff.CompareScan): the
// new checkpoint is read once, the previous one once more, chunk by chunk.

// scanAndCompare scans c and, when an update is to be measured (the previous
// checkpoint was healthy), compares the previous checkpoint with c in the
// same pass. res is nil when no update is measured; cmpErr says why when the
// comparison failed (c is then scanned alone). err is the scan's error
// (cancelled).
func (w *watcher) scanAndCompare(ctx context.Context, c *formats.Checkpoint) (r *inspect.Result, res *diff.Result, cmpErr, err error) {
	if from := w.compareFrom(); from != nil {
		res, r, cmpErr = diff.CompareScan(ctx, from, c, w.opts.Diff, w.opts.Scan)
		if cmpErr == nil || ctx.Err() != nil {
			return r, res, nil, ctx.Err()
		}
	}
	r, err = inspect.Scan(ctx, c, w.opts.Scan)
	return r, nil, cmpErr, err
}

// compareFrom is the checkpoint the next one is compared with: the previous
// one when it was healthy (between damaged ones the update means nothing, and
// the scan has said what is wrong), or its kept copy when rotation deleted it
// already (the same bytes); nil when no update is measured.
func (w *watcher) compareFrom() *formats.Checkpoint {
	if w.prev == nil || !w.prev.healthy || w.prev.ckpt == nil {
		return nil
	}
	from := w.prev.ckpt
	if gone(w.prev.entry.Path) && w.keeper != nil {
		if kc := w.keeper.copyOf(w.prev.entry); kc != "" {
			if kept, err := formats.Open(kc); err == nil {
				from = kept.Weights()
			}
		}
	}
	return from
}
