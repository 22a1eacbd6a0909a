package optim

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// The one-read scan of a checkpoint with optimizer state. The predicted
// update needs each parameter's moments and weight element by element; the
// scan needs the statistics of every tensor. Scan reads each parameter's
// tensors once, a piece at a time (the scan engine's pieces, at most 256 KiB),
// and hands every piece both to the scan (inspect.ScanPlan, piece by piece:
// the engine's accumulators to the bit) and to the update's loop; the scan's
// engine then reads what is left (the other tensors, and whatever this pass
// could not take).
//
// A parameter is cut into units: runs of whole ranges of the update's sums
// (sumRange) that are also whole chunks of the scan for every tensor it
// folds. The units of all parameters go to the workers largest first; a unit
// folds its chunks (each chunk on one worker, merged by the scan in chunk
// order) and records the partial sums of its ranges at their index. Once
// every unit is done, a parameter's partials are added in range order: the
// order predict adds them in, so the predictions are the same to the bit
// whatever the number of workers, and the largest parameter (an embedding)
// is no longer one worker's work. Memory is a few pieces per worker.

// Scan scans c, the checkpoint s was read from, as inspect.Scan(ctx, c, opts)
// does (the same Result), reading the optimizer state's moments and weights
// once for both the scan and the predicted update; Check then takes the
// predictions from this pass instead of reading the tensors again. When the
// optimizer file is not part of c (Read opened it on its own), it is
// inspect.Scan, and Check scans that file the same way.
func (s *State) Scan(ctx context.Context, c *formats.Checkpoint, opts inspect.Options) (*inspect.Result, error) {
	if s.own != nil {
		return inspect.Scan(ctx, c, opts)
	}
	return s.scanFused(ctx, c, opts)
}

// fusedPred is one parameter's prediction from the one-read pass; ok is false
// when the pass left it to predict.
type fusedPred struct {
	prediction
	ok bool
}

// fusedParam is the one-read pass's state of one parameter: the partial sums
// of its ranges (filled by its units, at their index), its negative count,
// how many of its units are done, and whether one failed.
type fusedParam struct {
	parts    [][2]float64
	negative atomic.Uint64
	done     atomic.Int64
	units    int64
	failed   atomic.Bool
}

// fusedUnit is elements [lo, hi) of parameter i.
type fusedUnit struct {
	i      int
	lo, hi int64
}

func (s *State) scanFused(ctx context.Context, c *formats.Checkpoint, opts inspect.Options) (*inspect.Result, error) {
	sp := inspect.NewScanPlan(c, opts)
	s.fused = make([]fusedPred, len(s.Params))
	// A tensor's chunks are folded by one parameter only (the first that
	// reads it, in the order of s.Params).
	claimed := map[*formats.Tensor]int{}
	for i, p := range s.Params {
		for _, t := range s.streamsOf(p) {
			if _, ok := claimed[t]; !ok {
				claimed[t] = i
			}
		}
	}
	params := make([]*fusedParam, len(s.Params))
	var units []fusedUnit
	for i, p := range s.Params {
		ts, _, _, _ := s.plan(p)
		if len(ts) == 0 || !fusable(ts) {
			continue
		}
		total := int64(numel(ts[0].Shape))
		fp := &fusedParam{parts: make([][2]float64, rangesOf(total))}
		params[i] = fp
		u := unitLen(sp, ts, claimed, i, total)
		for lo := int64(0); lo < total; lo += u {
			units = append(units, fusedUnit{i: i, lo: lo, hi: min(lo+u, total)})
			fp.units++
		}
	}
	// Largest first, so that the last to finish are the small ones.
	slices.SortStableFunc(units, func(a, b fusedUnit) int {
		return cmp.Compare(b.hi-b.lo, a.hi-a.lo)
	})
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, len(units)))
	var progressMu sync.Mutex
	progress := func(n int64) {
		if opts.Progress != nil {
			progressMu.Lock()
			opts.Progress(n)
			progressMu.Unlock()
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var w fusedWorker
			for ctx.Err() == nil {
				j := int(next.Add(1) - 1)
				if j >= len(units) {
					return
				}
				u := units[j]
				fp := params[u.i]
				if fp.failed.Load() || !w.unit(s, sp, u, fp, claimed, progress) {
					fp.failed.Store(true)
				}
				fp.done.Add(1)
			}
		}()
	}
	wg.Wait()
	for i, fp := range params {
		if fp == nil || fp.failed.Load() || fp.done.Load() != fp.units {
			continue // left to predict
		}
		out := &s.fused[i]
		out.ok, out.negative = true, fp.negative.Load()
		if _, canRatio, _, _ := s.plan(s.Params[i]); canRatio {
			out.ratio = ratioOf(fp.parts)
		}
	}
	return sp.Finish(ctx)
}

// fusable says whether the one-read pass reads a parameter's tensors ts
// (plan): contiguous, in a file, of a floating-point dtype it decodes, and
// whole.
func fusable(ts []*formats.Tensor) bool {
	for _, t := range ts {
		if !t.Contiguous() || !fusedDType(t.DType) || t.File == nil || uint64(t.Length()) != numel(t.Shape)*uint64(t.DType.Size()) {
			return false
		}
	}
	return true
}

// rangesOf is the number of ranges of the update's sums of n elements.
func rangesOf(n int64) int64 { return (n + sumRange - 1) / sumRange }

// unitLen is the length, in elements, of parameter i's units: the smallest
// run of whole ranges (sumRange) that is also a run of whole scan chunks of
// every tensor it folds; the whole parameter (rounded up to whole ranges)
// when there is no such run shorter than it.
func unitLen(sp *inspect.ScanPlan, ts []*formats.Tensor, claimed map[*formats.Tensor]int, i int, total int64) int64 {
	whole := max(rangesOf(total), 1) * sumRange
	u := sumRange
	for _, t := range ts {
		if claimed[t] != i {
			continue
		}
		chunkB, _, _, ok := sp.Chunks(t)
		size := int64(t.DType.Size())
		if !ok || chunkB%size != 0 {
			continue
		}
		ce := chunkB / size
		if u /= gcd(u, ce); u >= (whole+ce-1)/ce {
			return whole // (u·ce, the next length, would be whole or more)
		}
		u *= ce
	}
	return u
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// streamsOf lists the tensors predict reads for p (plan).
func (s *State) streamsOf(p *Param) []*formats.Tensor {
	ts, _, _, _ := s.plan(p)
	return ts
}

// fusedWorker is one worker's memory: a stream per tensor a parameter reads.
type fusedWorker struct {
	streams [4]fusedStream
}

// fusedStream is one tensor being read a piece at a time: the piece's
// elements [lo, hi) are in raw (and, decoded, in buf).
type fusedStream struct {
	t      *formats.Tensor
	src    formats.Source
	size   int64 // bytes per element
	total  int64 // elements
	fold   bool  // its chunks go to the scan
	chunk  int64 // elements per scan chunk
	piece  int64 // elements per piece
	f      inspect.Folder
	raw    []byte
	buf    []float64
	lo, hi int64
}

// fusedDType says whether the one-read pass reads a dtype (the floating-point
// types moments and weights are kept in); others are left to predict.
func fusedDType(dt formats.DType) bool {
	switch dt {
	case formats.F64, formats.F32, formats.F16, formats.BF16:
		return true
	}
	return false
}

// open prepares st to read t from element e (the start of a unit).
func (st *fusedStream) open(sp *inspect.ScanPlan, t *formats.Tensor, fold bool, e int64) error {
	src, err := formats.OpenSource(t.File.Path, formats.Pread)
	if err != nil {
		return err
	}
	if fi, err := src.Stat(); err != nil || t.File.CheckUnchanged(fi) != nil {
		src.Close()
		return fmt.Errorf("%s changed since it was opened", t.File.Path)
	}
	st.t, st.src, st.size, st.total = t, src, int64(t.DType.Size()), int64(numel(t.Shape))
	st.lo, st.hi, st.fold, st.piece = e, e, false, chunk
	if chunkB, pieceB, _, ok := sp.Chunks(t); ok && fold {
		st.fold, st.chunk, st.piece = true, chunkB/st.size, pieceB/st.size
	}
	if need := int(st.piece * st.size); len(st.raw) < need {
		st.raw = make([]byte, need)
	}
	if len(st.buf) < int(st.piece) {
		st.buf = make([]float64, st.piece)
	}
	return nil
}

// fill reads the piece that starts at element e (where the previous one
// ended) and ends by end, handing it to the scan when st folds. A chunk is
// folded only when it is read from its start (a unit starts at one).
func (st *fusedStream) fill(sp *inspect.ScanPlan, e, end int64, progress func(int64)) error {
	end = min(end, e+st.piece, st.total)
	if st.fold {
		k := e / st.chunk
		end = min(end, (k+1)*st.chunk)
		if e == k*st.chunk {
			sp.BeginChunk(&st.f, st.t, int(k))
		}
	}
	b := st.raw[:(end-e)*st.size]
	if _, err := st.src.ReadAt(b, st.t.Offset+e*st.size); err != nil {
		return err
	}
	if st.fold {
		st.f.Piece(b)
		if end == st.total || end%st.chunk == 0 {
			sp.EndChunk(&st.f, false)
		}
		progress(int64(len(b)))
	}
	st.lo, st.hi = e, end
	return nil
}

// bytes returns the stream's bytes of elements [e, e+n) (within its piece).
func (st *fusedStream) bytes(e, n int64) []byte {
	return st.raw[(e-st.lo)*st.size : (e-st.lo+n)*st.size]
}

// floats returns elements [e, e+n) decoded.
func (st *fusedStream) floats(e, n int64) []float64 {
	return st.buf[:inspect.DecodeFloat64(st.t.DType, st.bytes(e, n), st.buf[:n])]
}

// unit is State.predict for the elements of unit u, reading its tensors once
// and folding them into sp: the negative count goes to fp, the partial sums
// of its ranges to their place in fp.parts. It reports false on a failure,
// which leaves the parameter to predict (and an unfinished chunk to the scan's
// engine), which meets it again and reports it as it does.
func (w *fusedWorker) unit(s *State, sp *inspect.ScanPlan, u fusedUnit, fp *fusedParam, claimed map[*formats.Tensor]int, progress func(int64)) bool {
	ts, canRatio, denom, k := s.plan(s.Params[u.i])
	st := w.streams[:len(ts)]
	opened := 0
	defer func() {
		for j := range st[:opened] {
			sp.EndChunk(&st[j].f, true) // a chunk left open by a failure
			st[j].src.Close()
		}
	}()
	for j, t := range ts {
		if err := st[j].open(sp, t, claimed[t] == u.i, u.lo); err != nil {
			return false
		}
		opened++
	}
	v := &st[0]
	// FP32 moments go to the update's loop as stored (see predict).
	raw32 := canRatio && ts[1].DType == formats.F32 && v.t.DType == formats.F32 && denom.DType == formats.F32
	var negative uint64
	acc := updateAcc{parts: fp.parts[u.lo/sumRange : u.lo/sumRange : rangesOf(u.hi)]}
	for e := u.lo; e < u.hi; {
		n := u.hi - e
		for j := range st {
			if e == st[j].hi {
				if err := st[j].fill(sp, e, u.hi, progress); err != nil {
					return false
				}
			}
			n = min(n, st[j].hi-e)
		}
		switch {
		case raw32:
			vr, dr, before := v.bytes(e, n), v.bytes(e, n), acc.neg
			if denom != v.t {
				dr = st[3].bytes(e, n)
			}
			updateSums32(st[1].bytes(e, n), dr, st[2].bytes(e, n), st[2].t.DType, int(n), &k, &acc)
			if denom == v.t {
				negative += acc.neg - before // counted by the update's loop
			} else {
				negative += negativeF32(vr)
			}
		default:
			vb := v.floats(e, n)
			for _, x := range vb {
				if x < 0 {
					negative++
				}
			}
			if canRatio {
				db := vb
				if denom != v.t {
					db = st[3].floats(e, n)
				}
				updateSums(st[1].floats(e, n), db, st[2].floats(e, n), &k, &acc)
			}
		}
		e += n
	}
	acc.finish()
	if canRatio && int64(len(acc.parts)) != rangesOf(u.hi)-u.lo/sumRange {
		return false // not whole ranges (cannot happen: units are)
	}
	fp.negative.Add(negative)
	return true
}
