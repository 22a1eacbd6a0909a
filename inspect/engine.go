package inspect

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ckpt-tool/ckpt/formats"
)

// The parallel scan engine. Every tensor is cut into chunks of whole elements
// (Options.ChunkBytes, default 8 MiB) and the chunks of the whole checkpoint,
// in file order, are handed out one at a time to the workers: a huge embedding
// and hundreds of small norms keep every core busy alike. Each chunk gets its
// own accumulator; a tensor's accumulators are merged in chunk order after all
// workers are done, so the result does not depend on the number of workers or
// on scheduling. A worker reads its chunk 256 KiB at a time into its own
// buffer (or maps the chunk alone and unmaps it when done), so memory is that
// buffer (or that mapping) plus its kernel's scratch (at most a 256 KiB
// histogram) per worker, whatever the size of the checkpoint.

// workItem is one chunk of one tensor.
type workItem struct {
	tensor int   // index into the plan's tensors
	file   int   // index into the plan's files
	seq    int   // chunk number within the tensor
	off    int64 // absolute offset of the chunk in the file
	n      int64 // bytes
}

// fileState is one file during a scan: its byte source, opened by the first
// worker that needs it and closed by the last, and its first read failure.
type fileState struct {
	file   *formats.File
	path   string
	mode   formats.SourceMode
	mu     sync.Mutex
	src    formats.Source
	opened bool
	closed bool
	err    error  // the first failure to open or read; the file's other chunks are skipped
	where  string // the tensor being read when it failed
	failed atomic.Bool
	left   atomic.Int64 // chunks not yet done
}

// source returns the file's byte source, opening it on first use.
func (f *fileState) source() (formats.Source, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.opened {
		f.opened = true
		f.src, f.err = formats.OpenSource(f.path, f.mode)
		if f.err == nil {
			f.err = f.unchanged()
		}
		if f.err != nil {
			f.failed.Store(true)
		}
	}
	return f.src, f.err
}

// unchanged checks that the opened file is the one whose header gave the
// tensor offsets (not replaced, resized or rewritten since); otherwise the
// source is closed and the file's tensors are not scanned.
func (f *fileState) unchanged() error {
	st, err := f.src.Stat()
	if err == nil {
		err = f.file.CheckUnchanged(st)
	}
	if err != nil {
		f.src.Close()
		f.src = nil
	}
	return err
}

// fail records the first read failure of the file.
func (f *fileState) fail(tensor string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err, f.where = err, tensor
	}
	f.failed.Store(true)
}

// release closes the source once no chunk of the file is left (or at the end
// of a cancelled scan).
func (f *fileState) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.src != nil && !f.closed {
		f.closed = true
		f.src.Close()
	}
}

// tensorPlan is one tensor during a scan.
type tensorPlan struct {
	t    *formats.Tensor
	file int   // index into the plan's files
	accs []Acc // one per chunk, in order; none when nothing is to be read
	done atomic.Int64
}

// plan is the work of one scan.
type plan struct {
	tensors []*tensorPlan
	files   []*fileState
	items   []workItem
}

// newPlan cuts every scannable tensor of c that sel selects (all when sel is
// nil) into chunks. Tensors that cannot be read get their reason in stats
// (indexed like c.Tensors).
func newPlan(c *formats.Checkpoint, stats []*TensorStats, opts *Options, sel func(int) bool) *plan {
	p := &plan{}
	fileIdx := map[*formats.File]int{}
	for i, t := range c.Tensors {
		tp := &tensorPlan{t: t}
		p.tensors = append(p.tensors, tp)
		if sel != nil && !sel(i) {
			continue
		}
		if t.File == nil {
			stats[i].Skipped = "the tensor has no file"
			continue
		}
		if why := unscannable(t, t.File.Size); why != "" {
			stats[i].Skipped = why
			continue
		}
		if t.TiedTo != "" {
			continue // the same bytes as the tensor it is tied to: scanned once, copied in Assemble
		}
		if !t.Contiguous() {
			// A view: one work item, read through its strides.
			fi := p.fileIndex(fileIdx, t, opts)
			p.items = append(p.items, workItem{tensor: i, file: fi, off: t.Offset, n: int64(t.Numel()) * int64(t.DType.Size())})
			tp.file = fi
			tp.accs = make([]Acc, 1)
			p.files[fi].left.Add(1)
			continue
		}
		step := chunkLen(t.DType, opts.chunkBytes())
		fi := p.fileIndex(fileIdx, t, opts)
		for off, seq := int64(0), 0; off < t.Length(); off, seq = off+step, seq+1 {
			p.items = append(p.items, workItem{tensor: i, file: fi, seq: seq, off: t.Offset + off, n: min(step, t.Length()-off)})
		}
		tp.file = fi
		tp.accs = make([]Acc, (t.Length()+step-1)/step)
		p.files[fi].left.Add(int64(len(tp.accs)))
	}
	return p
}

// fileIndex returns the index of t's file in the plan, adding it on first use.
func (p *plan) fileIndex(idx map[*formats.File]int, t *formats.Tensor, opts *Options) int {
	fi, ok := idx[t.File]
	if !ok {
		fi = len(p.files)
		idx[t.File] = fi
		p.files = append(p.files, &fileState{file: t.File, path: t.File.Path, mode: opts.Source})
	}
	return fi
}

// worker is one goroutine's reusable memory.
type worker struct {
	buf []byte
	sc  scratch
}

// readBytes is how much of a chunk is read (or, from a mapping, processed) at
// a time: small enough that the bytes pread copies are still in the L2 cache
// when the kernel reads them.
const readBytes = 256 << 10

// How scanChunk folds the pieces of a chunk.
const (
	foldKernel = iota // each piece through the dtype's kernel, accumulators merged
	foldHist16        // 16-bit data into the histogram, reduced once per chunk
	foldPairs8        // one-byte data into the histogram by pairs, reduced once per chunk
)

// foldMode picks how a chunk of n bytes of dt is folded.
func foldMode(dt formats.DType, n int64) int {
	switch {
	case dt.Bits() == 16 && n/2 >= hist16MinElems && !simdHandles(dt):
		return foldHist16
	case dt.Bits() == 8 && n >= pairs8MinElems:
		return foldPairs8
	}
	return foldKernel
}

// scanChunk computes the accumulator of n bytes of dtype dt at off in src, a
// piece at a time: read into the worker's buffer, or, from a mapped file,
// sliced from the mapping and touched only inside formats.CatchFault. The
// histograms accumulate over the pieces and are reduced once, so both sources
// give the same result to the bit.
func (w *worker) scanChunk(src formats.Source, dt formats.DType, off, n int64) (Acc, error) {
	var mapped []byte
	if m, ok := src.(formats.Mapped); ok {
		// One mapping per chunk, unmapped when done: resident memory stays
		// bounded by the chunks in flight, not by the size of the file.
		win, err := m.Window(off, n)
		if err != nil {
			return Acc{}, err
		}
		defer win.Close()
		mapped, off = win.Data, 0
	}
	return w.foldChunk(src, mapped, dt, off, n)
}

// foldChunk is scanChunk once the chunk's source is known: the n bytes at off
// in mapped (touched inside formats.CatchFault unless src is nil: bytes
// already in memory), or read from src when mapped is nil.
func (w *worker) foldChunk(src formats.Source, mapped []byte, dt formats.DType, off, n int64) (Acc, error) {
	cf := w.beginFold(dt, n)
	err := w.pieces(src, mapped, dt, off, n, func(b []byte) bool {
		w.foldPiece(&cf, b)
		return true
	})
	if err != nil {
		w.sc.clear8()
		return Acc{}, err
	}
	acc, again := w.endFold(&cf)
	if again {
		// Rare: read the chunk again to find where the first one is.
		var seen int64
		err := w.pieces(src, mapped, dt, off, n, func(b []byte) bool {
			if i := firstBad8(dt, b); i >= 0 {
				acc.FirstBad = seen + i
				return false
			}
			seen += int64(len(b))
			return true
		})
		if err != nil {
			return Acc{}, err
		}
	}
	return acc, nil
}

// chunkFold is one chunk being folded a piece at a time (foldChunk's state).
type chunkFold struct {
	dt       formats.DType
	n        int64 // the chunk's bytes
	mode     int
	acc      Acc
	elems    uint64
	firstBad int64
}

// beginFold starts folding a chunk of n bytes of dt.
func (w *worker) beginFold(dt formats.DType, n int64) chunkFold {
	return chunkFold{dt: dt, n: n, mode: foldMode(dt, n), acc: NewAcc(), firstBad: -1}
}

// foldPiece folds the chunk's next piece (pieces: the chunk cut every
// chunkLen(dt, readBytes) bytes from its start).
func (w *worker) foldPiece(cf *chunkFold, b []byte) {
	switch cf.mode {
	case foldHist16:
		w.sc.fill16(b)
		if cf.firstBad < 0 && w.sc.anyNonFinite16(cf.dt) {
			cf.firstBad = int64(cf.elems) + firstBad16(b, class16(cf.dt))
		}
		cf.elems += uint64(len(b) / 2)
	case foldPairs8:
		w.sc.fillPairs8(b)
	default:
		a := w.sc.stats(cf.dt, b)
		cf.acc.Merge(&a)
	}
}

// endFold returns the accumulator of a chunk whose every piece was folded;
// again is set when the chunk holds a nonfinite one-byte value, whose place
// (Acc.FirstBad) is found by reading the chunk again.
func (w *worker) endFold(cf *chunkFold) (acc Acc, again bool) {
	switch cf.mode {
	case foldHist16:
		acc = w.sc.reduce16(cf.dt, cf.elems)
		acc.FirstBad = cf.firstBad
		return acc, false
	case foldPairs8:
		w.sc.pairsTo8()
		acc = w.sc.reduce8(cf.dt, uint64(cf.n))
		return acc, acc.NonFinite() > 0
	}
	return cf.acc, false
}

// pieces hands the n bytes at off in src to fn a piece of at most readBytes
// (whole elements) at a time, until fn returns false: read into the worker's
// buffer, or sliced from the mapping inside formats.CatchFault (from memory
// already read when src is nil).
func (w *worker) pieces(src formats.Source, mapped []byte, dt formats.DType, off, n int64, fn func([]byte) bool) error {
	step := chunkLen(dt, readBytes)
	if mapped == nil && int64(len(w.buf)) < min(step, n) {
		w.buf = make([]byte, min(step, n))
	}
	for pos := int64(0); pos < n; pos += step {
		k := min(step, n-pos)
		more := true
		if mapped != nil && src == nil {
			more = fn(mapped[off+pos : off+pos+k])
		} else if mapped != nil {
			b := mapped[off+pos : off+pos+k]
			if err := formats.CatchFault(src.Path(), func() error { more = fn(b); return nil }); err != nil {
				return err
			}
		} else {
			b := w.buf[:k]
			if _, err := src.ReadAt(b, off+pos); err != nil {
				return err
			}
			more = fn(b)
		}
		if !more {
			return nil
		}
	}
	return nil
}

// run scans every work item with the given number of workers. It returns
// ctx.Err() when cancelled.
func (p *plan) run(ctx context.Context, workers int, progress func(int64)) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, len(p.items)))
	var next atomic.Int64
	var progressMu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{}
			for {
				i := next.Add(1) - 1
				if i >= int64(len(p.items)) || ctx.Err() != nil {
					return
				}
				it := p.items[i]
				f := p.files[it.file]
				tp := p.tensors[it.tensor]
				if !f.failed.Load() {
					if src, err := f.source(); err == nil {
						var acc Acc
						if tp.t.Contiguous() {
							acc, err = w.scanChunk(src, tp.t.DType, it.off, it.n)
						} else {
							acc, err = w.scanStrided(src, tp.t)
						}
						if err != nil {
							f.fail(tp.t.Name, err)
						} else {
							tp.accs[it.seq] = acc
							tp.done.Add(1)
						}
					}
				}
				if f.left.Add(-1) == 0 {
					f.release()
				}
				if progress != nil {
					progressMu.Lock()
					progress(it.n)
					progressMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for _, f := range p.files {
		f.release()
	}
	return ctx.Err()
}

// collect merges each fully scanned tensor's chunk accumulators in order into
// its stats and marks the tensors of failed files as skipped. It returns the
// files that could not be read to the end.
func (p *plan) collect(stats []*TensorStats) []ReadFailure {
	skipped := map[*fileState]int{}
	for i, tp := range p.tensors {
		if len(tp.accs) == 0 {
			continue
		}
		ts := stats[i]
		if tp.done.Load() != int64(len(tp.accs)) {
			ts.Skipped = "not scanned: reading the file failed"
			skipped[p.files[tp.file]]++
			continue
		}
		for j := range tp.accs {
			ts.Acc.Merge(&tp.accs[j])
		}
		ts.finish()
	}
	var out []ReadFailure
	for _, f := range p.files {
		if f.err != nil {
			out = append(out, ReadFailure{File: f.path, Tensor: f.where, Err: f.err.Error(), Skipped: skipped[f]})
		}
	}
	return out
}
