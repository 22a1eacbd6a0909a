package diff

import (
	"bytes"
	"fmt"
	"io"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// Reading a chunk piece by piece. A chunk (Options.ChunkBytes, 8 MiB by
// default) is the unit of work handed to a worker, but it is not read whole:
// its A and B bytes are read one piece at a time (pieceBytes, the scan
// engine's read size) into buffers the worker reuses, and each pair of pieces
// is compared while it is still in the L2 cache, before the next is read.
// Reading the chunk whole would have pread write 8 MiB per side out of the
// cache and the kernel read it back from memory. A series (CompareSeries)
// follows each piece through the checkpoints, holding two pieces.
//
// A piece is a whole number of sub-blocks (subBlock values, the run the
// kernels fold per call) from the chunk's start, so a chunk's values are
// folded in the same calls, in the same order, as from a chunk read whole:
// the result is the same to the bit. A chunk is byte-identical when all its
// pieces are. Identical pieces fold as the same bytes compared with
// themselves do, so a chunk's pieces may be folded each as it comes. But
// those met before any change of the comparison are not decoded: they are
// kept, read into the buffer one after the other (as the whole chunk would
// be), until a changed piece of the same chunk needs their norms, or the
// chunk ends, when they get them only if some chunk has changed by then, as
// a chunk read whole does. So the bytes read and the values decoded are those
// of whole chunks.
//
// With a scan attached (CompareScan), B's pieces are streamed into B's scan
// when the chunk is one of the scan's and the pieces whole numbers of its
// (scanFeed). A pair whose rows are reordered (llama q/k across formats), a
// chunk the scan wants whole (inspect.ScanPlan.Fold) and an empty chunk are
// read a chunk at a time.

// pieceBytes is how much of each side of a chunk is read at a time: the scan
// engine's read size (inspect's readBytes). A variable so that tests can cut
// chunks into many pieces.
var pieceBytes = 256 << 10

// pieceScalars is how many values of a pair are read at a time: a whole
// number of sub-blocks of about pieceBytes of the wider side, or 0 when the
// pair is read a chunk at a time.
func pieceScalars(pw *pairWork) uint64 {
	if pw.perm != nil {
		return 0
	}
	align := max(scalarAlign(pw.ta.DType), scalarAlign(pw.tb.DType))
	if subBlock%align != 0 {
		return 0
	}
	bits := uint64(max(scalarBits(pw.ta.DType), scalarBits(pw.tb.DType)))
	return max(1, uint64(pieceBytes)*8/bits/subBlock) * subBlock
}

// pieceReader reads runs of scalars of one tensor, piece by piece: a view
// (PyTorch strided tensor) through a formats.ViewReader kept while the
// pieces follow one another.
type pieceReader struct {
	t    *formats.Tensor
	src  formats.Source
	view *formats.ViewReader
	next int64 // where the view reader stands
}

// newPieceReader prepares to read t's pieces.
func newPieceReader(e *engine, t *formats.Tensor) pieceReader {
	return pieceReader{t: t, src: e.srcs[t.File.Path]}
}

// read reads scalars [s0, s1) of the tensor into (*buf)[at:], keeping the
// first at bytes of *buf; if it must grow, *buf gets room for want bytes.
func (r *pieceReader) read(e *engine, s0, s1 uint64, buf *[]byte, at, want int) ([]byte, error) {
	lo, hi := byteRange(r.t, s0, s1)
	n := int(hi - lo)
	if cap(*buf) < at+n {
		nb := make([]byte, max(at+n, want))
		copy(nb, (*buf)[:at])
		*buf = nb
	}
	b := (*buf)[at : at+n]
	if n == 0 {
		return b, nil
	}
	if r.src == nil {
		return nil, fmt.Errorf("%s: file was not opened", r.t.File.Path)
	}
	if !r.t.Contiguous() {
		// A view: its elements in C order through its strides.
		if r.view == nil || r.next != lo {
			r.view = formats.NewViewReader(r.src, r.src.Size(), r.t)
			r.view.SkipTo(lo)
		}
		r.next = hi
		if _, err := io.ReadFull(r.view, b); err != nil {
			r.view = nil
			return nil, fmt.Errorf("tensor %q: %w", r.t.Name, err)
		}
	} else if _, err := r.src.ReadAt(b, r.t.Offset+lo); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", r.t.Name, err)
	}
	readBytes.Add(int64(n))
	e.read.Add(int64(n))
	return b, nil
}

// How a chunk of B read piece by piece feeds B's scan (CompareScan).
const (
	scanNone   = iota // no scan, or not one that reads this tensor by chunks
	scanStream        // the chunk is one of the scan's: its pieces are streamed to it
	scanWhole         // the scan wants the chunk whole (inspect.ScanPlan.Fold): read it whole
)

// scanFeedMode is how one chunk of B feeds B's scan (scanFeed).
type scanFeedMode struct {
	mode  int
	chunk int   // the scan's chunk number (scanStream)
	piece int64 // the scan's piece length; a multiple of it is read at a time (scanStream)
}

// scanFeed says how task tk of tb, read step values at a time, feeds B's
// scan: streamed when the task is one of the scan's chunks and its pieces
// are whole numbers of the scan's. A strided view (one scan chunk of all its
// elements), a chunk of one-byte or sub-byte values (the scan drops a
// streamed one holding a nonfinite value) and a chunk cut otherwise than the
// scan's are read whole, as Fold wants them.
func scanFeed(e *engine, tb *formats.Tensor, tk task, step uint64) scanFeedMode {
	if e.scan == nil || !e.scanFiles[tb.File.Path] {
		return scanFeedMode{mode: scanNone}
	}
	if !tb.Contiguous() || tb.DType.Bits() <= 8 {
		return scanFeedMode{mode: scanWhole}
	}
	chunk, piece, total, ok := e.scan.Chunks(tb)
	if !ok {
		return scanFeedMode{mode: scanNone}
	}
	lo, hi := byteRange(tb, tk.s0, tk.s1)
	whole := tk.s1-tk.s0 <= step // one piece: cut into the scan's
	if piece <= 0 || lo%chunk != 0 || hi != min(lo+chunk, total) || !whole && int64(byteOffset(tb.DType, step))%piece != 0 {
		return scanFeedMode{mode: scanWhole}
	}
	return scanFeedMode{mode: scanStream, chunk: int(lo / chunk), piece: piece}
}

// doPieces is do for a chunk read piece by piece, step values at a time.
func (w *worker) doPieces(e *engine, pw *pairWork, tk task, norms bool, step uint64, feed scanFeedMode) chunkResult {
	var res chunkResult
	ta, tb := pw.ta, pw.tb
	// B's pieces (or A's, when they are B's bytes) are streamed to B's scan.
	stream := feed.mode == scanStream && (!norms || pw.same)
	if stream {
		if w.scan == nil {
			w.scan = new(inspect.Folder)
		}
		stream = e.scan.BeginChunk(w.scan, tb, feed.chunk)
	}
	done := false
	defer func() {
		if stream {
			e.scan.EndChunk(w.scan, !done) // a failed read leaves the chunk to the scan
		}
	}()
	toScan := func(b []byte) {
		if stream {
			for o := 0; o < len(b); o += int(feed.piece) {
				w.scan.Piece(b[o:min(len(b), o+int(feed.piece))])
			}
		}
	}
	pa := newPieceReader(e, ta)
	var nbytes int64
	if norms {
		for s := tk.s0; s < tk.s1; s += step {
			s1 := min(tk.s1, s+step)
			ra, err := pa.read(e, s, s1, &w.bufA, 0, 0)
			if err != nil {
				return chunkResult{err: err}
			}
			toScan(ra)
			w.fold(int(s1-s), ta.DType, ra, tb.DType, nil, &res.stats)
			e.decoded.Add(int64(s1 - s))
			nbytes += int64(len(ra))
		}
		if e.opts.Progress != nil {
			e.opts.Progress(nbytes)
		}
		done = true
		return chunkResult{identical: true, normed: true, stats: res.stats}
	}
	pb := newPieceReader(e, tb)
	// held bytes of A (kept values), at the start of w.bufA, are identical
	// pieces not yet folded; the pieces before them are folded into res.
	lo, hi := byteRange(ta, tk.s0, tk.s1)
	whole := int(hi - lo)
	held, kept := 0, 0
	identical := ta.DType == tb.DType
	for s := tk.s0; s < tk.s1; s += step {
		s1 := min(tk.s1, s+step)
		n := int(s1 - s)
		ra, err := pa.read(e, s, s1, &w.bufA, held, whole)
		if err != nil {
			return chunkResult{err: err}
		}
		rb, err := pb.read(e, s, s1, &w.bufB, 0, 0)
		if err != nil {
			return chunkResult{err: err}
		}
		toScan(rb)
		nbytes += int64(len(ra) + len(rb))
		if ta.DType == tb.DType && bytes.Equal(ra, rb) {
			held, kept = held+len(ra), kept+n
			if e.changed.Load() {
				// The chunk's norms will be needed, whether it changes
				// or not: fold what is kept now.
				w.fold(kept, ta.DType, w.bufA[:held], tb.DType, nil, &res.stats)
				e.decoded.Add(int64(kept))
				held, kept = 0, 0
			}
			continue
		}
		identical = false
		e.changed.Store(true)
		if held > 0 {
			// Identical pieces compared with themselves fold exactly as
			// compared with B's equal bytes.
			w.fold(kept, ta.DType, w.bufA[:held], tb.DType, nil, &res.stats)
			e.decoded.Add(int64(kept))
		}
		w.fold(n, ta.DType, ra, tb.DType, rb, &res.stats)
		e.decoded.Add(int64(n))
		held, kept = 0, 0
	}
	res.identical, res.normed = identical, true
	if held > 0 {
		// Only identical pieces were met, none folded: the chunk gets its
		// norms if some chunk has changed by now.
		if e.changed.Load() {
			w.fold(kept, ta.DType, w.bufA[:held], tb.DType, nil, &res.stats)
			e.decoded.Add(int64(kept))
		} else {
			res.normed = false
		}
	}
	if e.opts.Progress != nil {
		e.opts.Progress(nbytes)
	}
	done = true
	return res
}
