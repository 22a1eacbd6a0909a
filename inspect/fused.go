package inspect

import (
	"context"
	"sync/atomic"

	"github.com/ckpt-tool/ckpt/formats"
)

// Scanning from bytes another engine reads. A comparison of two checkpoints
// (package diff) reads every tensor of the newer one chunk by chunk; a
// ScanPlan lets it fold those very bytes into the newer checkpoint's scan,
// so that the scan does not read them again. The plan cuts each tensor into
// the chunks Scan would read (Options.ChunkBytes, whole elements; a strided
// view is one chunk of its elements in C order), and Fold computes the
// accumulator of every chunk lying wholly within the bytes it is handed,
// exactly as the engine computes it from the file: the same pieces, the same
// kernels. Finish reads, through the engine, the chunks nobody folded
// (tensors the caller did not read, chunks that straddle two of the caller's
// reads), then merges each tensor's chunk accumulators in chunk order as Scan
// does. So the Result is Scan's to the bit, whatever the number of workers on
// either side and whichever chunks were folded.

// ScanPlan is the scan of one checkpoint, fed partly by a caller that reads
// the checkpoint's tensors for its own purpose. Fold may be called from
// several goroutines at once (each with its own Folder); Finish is called
// once, after every Fold has returned.
type ScanPlan struct {
	c      *formats.Checkpoint
	opts   Options
	stats  []*TensorStats
	p      *plan
	index  map[*formats.Tensor]int // c.Tensors index of the tensors read by chunks
	folded [][]bool                // per tensor, per chunk: its accumulator was folded
	read   atomic.Int64            // bytes Finish read itself
}

// Folder is one goroutine's memory for Fold (the kernels' scratch) and its
// chunk being streamed (BeginChunk); the zero value is ready to use.
type Folder struct {
	w     worker
	cf    chunkFold
	tp    int // the streamed chunk's tensor (index into the plan's tensors), -1 when none
	chunk int
	open  bool
}

// NewScanPlan plans the scan of c with opts, as Scan(ctx, c, opts) would.
func NewScanPlan(c *formats.Checkpoint, opts Options) *ScanPlan {
	s := &ScanPlan{c: c, opts: opts, stats: make([]*TensorStats, len(c.Tensors)), index: map[*formats.Tensor]int{}}
	for i, t := range c.Tensors {
		s.stats[i] = newTensorStats(t)
	}
	s.p = newPlan(c, s.stats, &s.opts, nil)
	s.folded = make([][]bool, len(s.p.tensors))
	for i, tp := range s.p.tensors {
		if len(tp.accs) > 0 {
			s.folded[i] = make([]bool, len(tp.accs))
			s.index[tp.t] = i
		}
	}
	return s
}

// chunking returns the byte length of t's chunks (the last may be shorter)
// and of all the bytes its scan reads.
func (s *ScanPlan) chunking(t *formats.Tensor) (step, total int64) {
	if !t.Contiguous() {
		total = int64(t.Numel()) * int64(t.DType.Size())
		return total, total
	}
	return chunkLen(t.DType, s.opts.chunkBytes()), t.Length()
}

// Fold folds into the scan every chunk of t that lies wholly within raw:
// the bytes of t from byte off on (off counted from the tensor's start; for a
// strided view, in the C order of its elements, as formats.ViewReader reads
// them). Tensors the scan does not read chunk by chunk (not c's, skipped,
// tied to another) are ignored. Two calls must not cover the same chunk.
func (s *ScanPlan) Fold(f *Folder, t *formats.Tensor, off int64, raw []byte) {
	i, ok := s.index[t]
	if !ok || off < 0 {
		return
	}
	tp := s.p.tensors[i]
	step, total := s.chunking(t)
	if step <= 0 {
		return // an empty view: nothing to read, left to Finish
	}
	end := min(off+int64(len(raw)), total)
	for k := (off + step - 1) / step; k < int64(len(tp.accs)); k++ {
		lo := k * step
		hi := min(lo+step, total)
		if hi > end {
			break
		}
		b := raw[lo-off : hi-off]
		var acc Acc
		if t.Contiguous() {
			acc, _ = f.w.foldChunk(nil, b, t.DType, 0, hi-lo) // from memory: it cannot fail
		} else {
			acc = f.w.foldStrided(t.DType, b)
		}
		tp.accs[k] = acc
		s.folded[i][k] = true
		tp.done.Add(1)
	}
}

// Finish scans the chunks that were not folded, with the options the plan
// was made with (Progress is called for those chunks only), and returns the
// Result Scan would have returned. The error is non-nil only when the scan
// was cancelled.
func (s *ScanPlan) Finish(ctx context.Context) (*Result, error) {
	var left []workItem
	for _, f := range s.p.files {
		f.left.Store(0)
	}
	for _, it := range s.p.items {
		if !s.folded[it.tensor][it.seq] {
			left = append(left, it)
			s.p.files[it.file].left.Add(1)
		}
	}
	s.p.items = left
	progress := func(n int64) {
		s.read.Add(n)
		if s.opts.Progress != nil {
			s.opts.Progress(n)
		}
	}
	if err := s.p.run(ctx, s.opts.Workers, progress); err != nil {
		return nil, err
	}
	failures := s.p.collect(s.stats)
	return Assemble(s.c, s.stats, failures, s.opts)
}

// BytesRead is how many bytes Finish scanned itself: those of the chunks
// that were not folded (0 when the caller's reads covered the whole scan).
func (s *ScanPlan) BytesRead() int64 { return s.read.Load() }

// Streaming a chunk. A caller that reads a tensor in small pieces (as the
// engine does, 256 KiB at a time) rather than a chunk at once folds them
// through BeginChunk, Piece and EndChunk: the same pieces in the same order
// give the engine's accumulator to the bit.

// Chunks says how the scan cuts t: the byte length of its chunks (the last
// may be shorter) and of the pieces a chunk is folded in (from the chunk's
// start; the last of a chunk may be shorter), and of all its bytes. ok is
// false when the scan does not read t chunk by chunk from its file (not c's,
// skipped, tied to another tensor, a strided view): BeginChunk then ignores it.
func (s *ScanPlan) Chunks(t *formats.Tensor) (chunk, piece, total int64, ok bool) {
	if _, in := s.index[t]; !in || !t.Contiguous() {
		return 0, 0, 0, false
	}
	chunk, total = s.chunking(t)
	return chunk, chunkLen(t.DType, readBytes), total, chunk > 0
}

// BeginChunk starts streaming chunk k of t (Chunks) into f; it reports
// whether the chunk is to be streamed (t is read chunk by chunk and k is one
// of its chunks). The chunk's pieces then go to Piece, in order, and
// EndChunk folds the chunk into the scan. A chunk must not be both streamed
// and folded (Fold).
func (s *ScanPlan) BeginChunk(f *Folder, t *formats.Tensor, k int) bool {
	f.open = false
	chunk, _, total, ok := s.Chunks(t)
	i := s.index[t]
	if !ok || k < 0 || k >= len(s.p.tensors[i].accs) {
		return false
	}
	lo := int64(k) * chunk
	f.cf = f.w.beginFold(t.DType, min(chunk, total-lo))
	f.tp, f.chunk, f.open = i, k, true
	return true
}

// Piece folds the streamed chunk's next piece: the bytes of the chunk from
// the end of the previous piece, of the length Chunks gives (the chunk's last
// piece may be shorter).
func (f *Folder) Piece(b []byte) {
	if f.open {
		f.w.foldPiece(&f.cf, b)
	}
}

// EndChunk folds the streamed chunk into the scan once its every piece went
// to Piece; abort (a read failed midway) drops it instead, leaving it to
// Finish. A chunk of one-byte values holding a nonfinite one is dropped too
// (the engine reads such a chunk again to find where the first is).
func (s *ScanPlan) EndChunk(f *Folder, abort bool) {
	if !f.open {
		return
	}
	f.open = false
	if abort {
		f.w.sc.clear8()
		return
	}
	acc, again := f.w.endFold(&f.cf)
	if again {
		return
	}
	tp := s.p.tensors[f.tp]
	tp.accs[f.chunk] = acc
	s.folded[f.tp][f.chunk] = true
	tp.done.Add(1)
}
