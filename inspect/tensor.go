package inspect

import (
	"fmt"

	"github.com/ckpt-tool/ckpt/formats"
)

// ScanTensor computes the statistics of one tensor read through src (which must
// be the tensor's file), in one goroutine, chunk by chunk: memory stays bounded
// by the chunk size whatever the tensor's size. opts.Workers is ignored; use
// Scan for a whole checkpoint in parallel. The error names the file and tensor
// when the bytes cannot be read.
func ScanTensor(src formats.Source, t *formats.Tensor, opts Options) (TensorStats, error) {
	ts := *newTensorStats(t)
	if why := unscannable(t, src.Size()); why != "" {
		ts.Skipped = why
		return ts, &formats.Error{Kind: formats.ErrTruncated, File: src.Path(), Tensor: t.Name, Offset: t.Offset, Detail: why}
	}
	w := &worker{}
	if !t.Contiguous() {
		a, err := w.scanStrided(src, t)
		if err != nil {
			ts.Skipped = "reading failed: " + err.Error()
			return ts, fmt.Errorf("%s: tensor %q: %w", src.Path(), t.Name, err)
		}
		ts.Acc = a
		ts.finish()
		return ts, nil
	}
	step := chunkLen(t.DType, opts.chunkBytes())
	for off := int64(0); off < t.Length(); off += step {
		n := min(step, t.Length()-off)
		a, err := w.scanChunk(src, t.DType, t.Offset+off, n)
		if err != nil {
			ts.Acc = NewAcc()
			ts.Skipped = "reading failed: " + err.Error()
			return ts, fmt.Errorf("%s: tensor %q: %w", src.Path(), t.Name, err)
		}
		ts.Acc.Merge(&a)
		if opts.Progress != nil {
			opts.Progress(n)
		}
	}
	ts.finish()
	return ts, nil
}

// newTensorStats starts the result of scanning t.
func newTensorStats(t *formats.Tensor) *TensorStats {
	path := ""
	if t.File != nil {
		path = t.File.Path
	}
	return &TensorStats{Name: t.Name, File: path, DType: t.DType, Shape: t.Shape, Numel: t.Numel(), Acc: NewAcc()}
}

// finish derives what follows from the accumulated statistics.
func (ts *TensorStats) finish() {
	if ts.FirstBad >= 0 {
		ts.FirstBadCoords = Coords(ts.Shape, uint64(ts.FirstBad))
	}
}

// unscannable says why t's bytes cannot be read from a file of the given size,
// or "" when they can.
func unscannable(t *formats.Tensor, size int64) string {
	if !t.DType.Valid() {
		return fmt.Sprintf("unknown dtype %q", t.DType)
	}
	if !t.Contiguous() {
		// A view: its elements lie in [Begin, End), checked by its reader.
		if len(t.Strides) != len(t.Shape) || t.End < t.Begin || t.DType.Size() == 0 {
			return "its strides do not match its shape"
		}
		if t.Offset < 0 || t.Offset > size || t.Length() > size-t.Offset {
			return "the file ends before this tensor does"
		}
		return ""
	}
	want, err := formats.TensorSpec{Name: t.Name, DType: t.DType, Shape: t.Shape}.ByteLen()
	if err != nil || t.End < t.Begin || want != t.End-t.Begin {
		return "its byte length does not match its dtype and shape"
	}
	if t.Cut || t.Offset < 0 || t.Offset > size || t.Length() > size-t.Offset {
		return "the file ends before this tensor does"
	}
	return ""
}

// DefaultChunkBytes is the default size of one unit of scan work.
const DefaultChunkBytes = 8 << 20

// maxChunkBytes caps a chunk so that buffers stay reasonable whatever is asked.
const maxChunkBytes = 1 << 30

func (o *Options) chunkBytes() int64 {
	if o.ChunkBytes <= 0 {
		return DefaultChunkBytes
	}
	return min(int64(o.ChunkBytes), maxChunkBytes)
}

// chunkLen rounds want down to a whole number of element groups of dt (the
// smallest run of elements that fills whole bytes), never below one group.
func chunkLen(dt formats.DType, want int64) int64 {
	g := int64(groupBytes(dt))
	return max(g, want/g*g)
}

// groupBytes is the byte length of the smallest whole-byte run of elements:
// the element size, 1 for F4 (two elements) and 3 for the F6 types (four).
func groupBytes(dt formats.DType) int {
	switch dt.Bits() {
	case 4:
		return 1
	case 6:
		return 3
	}
	return max(1, dt.Bits()/8)
}
