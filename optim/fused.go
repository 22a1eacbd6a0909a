package optim

import (
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
// could not take). Parameters go to the workers largest first, each on one
// worker from its first element to its last, so its sums are added in the
// order predict adds them: the same predictions to the bit. Memory is a few
// pieces per worker.

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

func (s *State) scanFused(ctx context.Context, c *formats.Checkpoint, opts inspect.Options) (*inspect.Result, error) {
	sp := inspect.NewScanPlan(c, opts)
	s.fused = make([]fusedPred, len(s.Params))
	// Largest first, so that the last to finish are the small ones.
	order := make([]int, 0, len(s.Params))
	for i, p := range s.Params {
		if v := p.state("exp_avg_sq"); v != nil && !v.Cut {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		na, nb := numel(s.Params[a].state("exp_avg_sq").Shape), numel(s.Params[b].state("exp_avg_sq").Shape)
		switch {
		case na > nb:
			return -1
		case na < nb:
			return 1
		}
		return 0
	})
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
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, len(order)))
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
				if j >= len(order) {
					return
				}
				i := order[j]
				s.fused[i] = w.predict(s, sp, i, claimed, progress)
			}
		}()
	}
	wg.Wait()
	return sp.Finish(ctx)
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

// open prepares st to read t from its first element.
func (st *fusedStream) open(sp *inspect.ScanPlan, t *formats.Tensor, fold bool) error {
	src, err := formats.OpenSource(t.File.Path, formats.Pread)
	if err != nil {
		return err
	}
	if fi, err := src.Stat(); err != nil || t.File.CheckUnchanged(fi) != nil {
		src.Close()
		return fmt.Errorf("%s changed since it was opened", t.File.Path)
	}
	st.t, st.src, st.size, st.total = t, src, int64(t.DType.Size()), int64(numel(t.Shape))
	st.lo, st.hi, st.fold, st.piece = 0, 0, false, chunk
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
// ended), handing it to the scan when st folds.
func (st *fusedStream) fill(sp *inspect.ScanPlan, e int64, progress func(int64)) error {
	end := min(e+st.piece, st.total)
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

// predict is State.predict for parameter i, reading its tensors once and
// folding them into sp. A failure leaves the parameter to predict (and its
// unfinished chunks to the scan's engine), which meets it again and reports it
// as it does.
func (w *fusedWorker) predict(s *State, sp *inspect.ScanPlan, i int, claimed map[*formats.Tensor]int, progress func(int64)) (out fusedPred) {
	p := s.Params[i]
	ts, canRatio, denom, k := s.plan(p)
	if len(ts) == 0 {
		return fusedPred{ok: true}
	}
	for _, t := range ts {
		if !t.Contiguous() || !fusedDType(t.DType) || t.File == nil || uint64(t.Length()) != numel(t.Shape)*uint64(t.DType.Size()) {
			return fusedPred{}
		}
	}
	st := w.streams[:len(ts)]
	opened := 0
	defer func() {
		for j := range st[:opened] {
			sp.EndChunk(&st[j].f, true) // a chunk left open by a failure
			st[j].src.Close()
		}
	}()
	for j, t := range ts {
		if err := st[j].open(sp, t, claimed[t] == i); err != nil {
			return fusedPred{}
		}
		opened++
	}
	v := &st[0]
	// FP32 moments go to the update's loop as stored (see predict).
	raw32 := canRatio && ts[1].DType == formats.F32 && v.t.DType == formats.F32 && denom.DType == formats.F32
	var negative uint64
	var acc updateAcc
	for e := int64(0); e < v.total; {
		n := v.total - e
		for j := range st {
			if e == st[j].hi {
				if err := st[j].fill(sp, e, progress); err != nil {
					return fusedPred{}
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
	out.ok, out.negative = true, negative
	if canRatio {
		out.ratio = ratioOf(acc)
	}
	return out
}
