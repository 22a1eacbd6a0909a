package diff

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
)

// Options control a comparison.
type Options struct {
	Workers    int               // goroutines; 0 means all CPUs
	ChunkBytes int               // bytes per side per unit of work; 0 means 8 MiB
	Progress   func(bytes int64) // called from workers as bytes are read; may be nil
}

// DefaultChunkBytes is the default size of one unit of comparison work per side.
const DefaultChunkBytes = 8 << 20

// decodedValues and readBytes count the values decoded and the bytes read by
// comparisons, so that tests can check that byte-identical chunks are never
// decoded and that a file compared with itself is not read.
var decodedValues, readBytes atomic.Int64

// subBlock is how many values are decoded and folded at a time.
const subBlock = 8192

// ComparePaths opens both checkpoints and compares them.
func ComparePaths(ctx context.Context, a, b string, opts Options) (*Result, error) {
	ca, err := formats.Open(a)
	if err != nil {
		return nil, err
	}
	cb, err := formats.Open(b)
	if err != nil {
		return nil, err
	}
	return Compare(ctx, ca, cb, opts)
}

// pairWork is one tensor present in both checkpoints whose values are compared.
type pairWork struct {
	d      *TensorDiff
	ta, tb *formats.Tensor
	first  int      // index of its first task
	ntask  int      //
	same   bool     // the same bytes of the same file on both sides: identical unread
	perm   *rowPerm // rows to reorder before comparing (llama q/k across formats)
}

// task is a run of scalars [s0, s1) of one pair.
type task struct {
	pair   int
	s0, s1 uint64
}

// chunkResult is what a worker found for one task.
type chunkResult struct {
	identical bool  // same dtype and byte-identical
	normed    bool  // stats hold values (always when not identical)
	stats     Stats //
	err       error // reading failed
}

// chunkBytes is the chunk size in effect: the default for 0, at least 64 bytes.
func (o Options) chunkBytes() int {
	if o.ChunkBytes <= 0 {
		return DefaultChunkBytes
	}
	return max(o.ChunkBytes, 64)
}

// Compare compares every tensor of a with the tensor of the same name in b.
// Each file is read once, in chunks spread over the workers; chunks whose bytes
// are identical are not decoded, and a tensor that lies at the same place of
// the same file on both sides (a checkpoint compared with itself, a shard
// hard-linked into both) is identical without being read. The layer, role and
// overall aggregates need the norms of identical chunks only when some tensor
// changed: identical chunks met after the first change get them from the bytes
// in hand, and only those met before it are read again from A. The error is non-nil only when the comparison itself
// failed (a file could not be opened, the context was cancelled); a tensor
// that cannot be read is reported with status Unreadable.
func Compare(ctx context.Context, a, b *formats.Checkpoint, opts Options) (*Result, error) {
	return compare(ctx, a, b, opts, nil)
}

// compare is Compare; with scan set, every chunk of b read for the
// comparison is also folded into scan (see CompareScan).
func compare(ctx context.Context, a, b *formats.Checkpoint, opts Options, scan *inspect.ScanPlan) (*Result, error) {
	cp := planCross(a, b)
	if cp != nil {
		a, b = cp.a, cp.b
	}
	pl := planPair(a, b, opts.chunkBytes(), sameFiles{}, cp)
	r, pairs, tasks := pl.r, pl.pairs, pl.tasks

	srcs, err := openSources(a, b)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	e := &engine{pairs: pairs, tasks: tasks, srcs: srcs, opts: opts, results: make([]chunkResult, len(tasks))}
	if scan != nil {
		e.scan, e.scanFiles = scan, unchangedFiles(b, srcs)
		// Identical chunks take their norms at once, from the bytes in
		// hand, as they do after a first change: A is then never read a
		// second time (norms dropped below when nothing changed).
		e.changed.Store(true)
	}
	all := make([]int, len(tasks))
	for i := range all {
		all[i] = i
	}
	if err := e.run(ctx, all, false); err != nil {
		return nil, err
	}
	// Second pass: the norms of identical chunks, needed only when something changed.
	anyChanged := false
	for _, pw := range pairs {
		for i := pw.first; i < pw.first+pw.ntask; i++ {
			if !e.results[i].identical && e.results[i].err == nil {
				anyChanged = true
			}
		}
	}
	if anyChanged {
		var again []int
		for i, res := range e.results {
			if res.identical && !res.normed {
				again = append(again, i)
			}
		}
		if err := e.run(ctx, again, true); err != nil {
			return nil, err
		}
	} else {
		for i, res := range e.results {
			if res.identical {
				e.results[i] = chunkResult{identical: true} // no norms, whichever pass took them
			}
		}
	}
	for _, pw := range pairs {
		finishPair(pw, e.results[pw.first:pw.first+pw.ntask])
	}
	if cp != nil {
		cp.judge(r)
		r.CrossFormat = &cp.info
		r.Problems = append(r.Problems, cp.probs...)
	}
	r.aggregate()
	r.Work = Work{BytesRead: e.read.Load(), ValuesDecoded: e.decoded.Load()}
	SortByChange(r.Tensors)
	return r, nil
}

func cutReason(ta, tb *formats.Tensor) string {
	if ta.Cut {
		return fmt.Sprintf("%s ends before this tensor does", ta.File.Path)
	}
	return fmt.Sprintf("%s ends before this tensor does", tb.File.Path)
}

// finishPair merges a pair's chunk results in order and sets its status.
func finishPair(pw *pairWork, res []chunkResult) {
	d := pw.d
	identical, normed := pw.ta.DType == pw.tb.DType, true
	for _, c := range res {
		if c.err != nil {
			d.Status, d.Reason = Unreadable, c.err.Error()
			d.Compared = false
			d.Stats = Stats{}
			return
		}
		identical = identical && c.identical
		normed = normed && c.normed
		d.Stats.Merge(&c.stats)
	}
	d.Bytes = pw.ta.Length() + pw.tb.Length()
	switch {
	case identical:
		d.Status = Identical
		d.Compared = normed
		if !normed {
			d.Stats = Stats{}
		}
	case d.Status == DTypeChanged:
		d.Compared = normed
	default:
		d.Status = Changed
		d.Compared = normed
	}
}

// aggregate fills the layer and role groups and the summary.
func (r *Result) aggregate() {
	layers, roles := map[string]*Group{}, map[string]*Group{}
	group := func(m map[string]*Group, k string) *Group {
		g := m[k]
		if g == nil {
			g = &Group{Key: k}
			m[k] = g
		}
		return g
	}
	s := &r.Summary
	for _, t := range r.Tensors {
		s.Tensors++
		s.Bytes += t.Bytes
		switch t.Status {
		case Identical:
			s.Identical++
		case Changed:
			s.Changed++
		case OnlyA:
			s.OnlyA++
		case OnlyB:
			s.OnlyB++
		case ShapeChanged:
			s.ShapeChanged++
		case DTypeChanged:
			s.DTypeChanged++
		case Unreadable:
			s.Unreadable++
		}
		s.Appeared += t.Appeared
		s.Disappeared += t.Disappeared
		layer, _, _ := formats.Layer(t.Name)
		role, _ := formats.Role(t.Name)
		for _, g := range []*Group{group(layers, layer), group(roles, role)} {
			g.Tensors++
			if t.Status != Identical {
				g.Changed++
			}
			if t.Compared {
				g.Stats.Merge(&t.Stats)
			}
		}
		if t.Compared {
			s.All.Merge(&t.Stats)
		}
	}
	for _, g := range layers {
		r.Layers = append(r.Layers, g)
	}
	sort.Slice(r.Layers, func(i, j int) bool { return layerLess(r.Layers[i].Key, r.Layers[j].Key) })
	for _, g := range roles {
		r.Roles = append(r.Roles, g)
	}
	sort.Slice(r.Roles, func(i, j int) bool { return r.Roles[i].Key < r.Roles[j].Key })
}

// openSources opens every file of both checkpoints for positioned reads.
func openSources(cs ...*formats.Checkpoint) (map[string]formats.Source, error) {
	srcs := map[string]formats.Source{}
	for _, c := range cs {
		for _, f := range c.Files {
			if _, ok := srcs[f.Path]; ok || !f.Parsed() || len(f.Tensors()) == 0 {
				continue
			}
			s, err := formats.OpenSource(f.Path, formats.Pread)
			if err != nil {
				for _, o := range srcs {
					o.Close()
				}
				return nil, err
			}
			srcs[f.Path] = s
		}
	}
	return srcs, nil
}

// engine runs tasks over a pool of workers.
type engine struct {
	pairs   []*pairWork
	tasks   []task
	srcs    map[string]formats.Source
	opts    Options
	results []chunkResult
	// read and decoded count the bytes read and the values decoded by this
	// comparison (Result.Work).
	read, decoded atomic.Int64
	// changed is set once a chunk has been found to differ.
	changed atomic.Bool
	// scan, when set, is B's scan, fed with the chunks of B as they are
	// read; only the files of scanFiles (unchanged since B's headers were
	// read) feed it.
	scan      *inspect.ScanPlan
	scanFiles map[string]bool
}

// run processes the listed tasks. With norms, each task is a chunk already
// found identical: only A is read, for its norms.
func (e *engine) run(ctx context.Context, todo []int, norms bool) error {
	return runPool(ctx, e.opts.Workers, todo, func(wk *worker, i int) {
		e.results[i] = wk.do(e, e.tasks[i], norms)
	})
}

// runPool hands items to a pool of workers (0 means one per CPU), each with its
// own buffers, and returns ctx.Err() when cancelled before every item ran.
func runPool[T any](ctx context.Context, workers int, items []T, do func(wk *worker, item T)) error {
	if len(items) == 0 {
		return nil
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(items))
	next := make(chan T)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wk := &worker{fa: make([]float64, subBlock), fb: make([]float64, subBlock)}
			for item := range next {
				do(wk, item)
			}
		}()
	}
	var err error
feed:
	for _, item := range items {
		select {
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		case next <- item:
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return err
}

type worker struct {
	bufA, bufB []byte
	fa, fb     []float64
	perm       []byte          // rows reordered by permute
	scan       *inspect.Folder // for engine.scan, made on first use
}

// permute returns raw (whole heads of a plain-dtype tensor) with its rows in
// the converter's order, in the worker's own buffer.
func (w *worker) permute(raw []byte, dt formats.DType, p *rowPerm) []byte {
	if cap(w.perm) < len(raw) {
		w.perm = make([]byte, len(raw))
	}
	out := w.perm[:len(raw)]
	permuteRows(out, raw, p.headRows, int(p.cols)*scalarBits(dt)/8)
	return out
}

// byteRange is where scalars [s0, s1) of t lie, relative to the tensor's start.
// s0 is a multiple of 8, so sub-byte dtypes start on a byte, and of the
// block for a ggml block type.
func byteRange(t *formats.Tensor, s0, s1 uint64) (int64, int64) {
	lo := int64(byteOffset(t.DType, s0))
	if s1 == scalarCount(t) {
		if !t.Contiguous() {
			return lo, int64(t.Numel()) * int64(t.DType.Size())
		}
		return lo, t.Length()
	}
	return lo, int64(byteOffset(t.DType, s1))
}

// read reads scalars [s0, s1) of t into *buf, growing it as needed (buffers
// are allocated on first use: a comparison of small tensors, or of a file with
// itself, never allocates a whole chunk).
func (w *worker) read(e *engine, t *formats.Tensor, s0, s1 uint64, buf *[]byte) ([]byte, error) {
	lo, hi := byteRange(t, s0, s1)
	if int64(cap(*buf)) < hi-lo {
		*buf = make([]byte, hi-lo)
	}
	b := (*buf)[:hi-lo]
	if len(b) == 0 {
		return b, nil
	}
	src := e.srcs[t.File.Path]
	if src == nil {
		return nil, fmt.Errorf("%s: file was not opened", t.File.Path)
	}
	if !t.Contiguous() {
		// A view (PyTorch): its elements in C order through its strides.
		v := formats.NewViewReader(src, src.Size(), t)
		v.SkipTo(lo)
		if _, err := io.ReadFull(v, b); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
	} else if _, err := src.ReadAt(b, t.Offset+lo); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	readBytes.Add(int64(len(b)))
	e.read.Add(int64(len(b)))
	return b, nil
}

func (w *worker) do(e *engine, tk task, norms bool) chunkResult {
	pw := e.pairs[tk.pair]
	var res chunkResult
	if pw.same && !norms {
		if e.opts.Progress != nil {
			lo, hi := byteRange(pw.ta, tk.s0, tk.s1)
			e.opts.Progress(2 * (hi - lo))
		}
		return chunkResult{identical: true}
	}
	if step := pieceScalars(pw); step > 0 && tk.s1 > tk.s0 {
		if feed := scanFeed(e, pw.tb, tk, step); feed.mode != scanWhole {
			return w.doPieces(e, pw, tk, norms, step, feed)
		}
	}
	ra, err := w.read(e, pw.ta, tk.s0, tk.s1, &w.bufA)
	if err != nil {
		return chunkResult{err: err}
	}
	if pw.perm != nil && pw.perm.source == "a" {
		ra = w.permute(ra, pw.ta.DType, pw.perm)
	}
	nbytes := int64(len(ra))
	if norms {
		if pw.same {
			w.foldScan(e, pw.tb, tk, ra) // B's bytes are A's: B's scan need not read them again
		}
		w.fold(int(tk.s1-tk.s0), pw.ta.DType, ra, pw.tb.DType, nil, &res.stats)
		e.decoded.Add(int64(tk.s1 - tk.s0))
		res.identical, res.normed = true, true
	} else {
		rb, err := w.read(e, pw.tb, tk.s0, tk.s1, &w.bufB)
		if err != nil {
			return chunkResult{err: err}
		}
		w.foldScan(e, pw.tb, tk, rb)
		if pw.perm != nil && pw.perm.source == "b" {
			rb = w.permute(rb, pw.tb.DType, pw.perm)
		}
		nbytes += int64(len(rb))
		switch {
		case pw.ta.DType == pw.tb.DType && bytes.Equal(ra, rb):
			res.identical = true
			// Once some chunk has changed, the aggregates will need the norms
			// of identical ones: take them now, from the bytes in hand, rather
			// than read A again in the second pass. The norms do not depend on
			// the pass that takes them, so the result does not depend on the
			// order the workers go in.
			if e.changed.Load() {
				w.fold(int(tk.s1-tk.s0), pw.ta.DType, ra, pw.tb.DType, nil, &res.stats)
				e.decoded.Add(int64(tk.s1 - tk.s0))
				res.normed = true
			}
		default:
			e.changed.Store(true)
			w.fold(int(tk.s1-tk.s0), pw.ta.DType, ra, pw.tb.DType, rb, &res.stats)
			e.decoded.Add(int64(tk.s1 - tk.s0))
			res.normed = true
		}
	}
	if e.opts.Progress != nil {
		e.opts.Progress(nbytes)
	}
	return res
}

// fold decodes the n values of ra (and of rb, unless nil: then ra is compared
// with itself) in sub-blocks and folds them into s.
func (w *worker) fold(n int, dtA formats.DType, ra []byte, dtB formats.DType, rb []byte, s *Stats) {
	w.foldIn(n, dtA, ra, dtB, rb, false, s)
}

// foldIn is fold, told by in that every value of ra and rb (of ra alone when
// rb is nil) is in the narrow range (narrowRangeOf, with dtA = dtB): the
// narrow loop then goes without its range check, to the same result.
func (w *worker) foldIn(n int, dtA formats.DType, ra []byte, dtB formats.DType, rb []byte, in bool, s *Stats) {
	bitsA := scalarBits(dtA)
	k := fastKernel(dtA, dtB)
	if in && dtA == dtB {
		if ki := inRangeKernel(dtA); ki != nil {
			k = ki
		}
	}
	if k != nil {
		if rb == nil {
			// A compared with itself: the same kernel, whose sums for B and
			// A·B are then those of A, and its differences zero.
			rb, dtB = ra, dtA
		}
		w := bitsA / 8
		for i := 0; i < n; i += subBlock {
			m := min(subBlock, n-i)
			k(ra[i*w:(i+m)*w], rb[i*w:(i+m)*w], s)
		}
		decodedValues.Add(int64(n)) // once per call: the counter is shared by every worker
		return
	}
	decoded := 0
	defer func() { decodedValues.Add(int64(decoded)) }()
	for i := 0; i < n; i += subBlock {
		m := min(subBlock, n-i)
		a := ra[byteOffset(dtA, uint64(i)):]
		k := inspect.DecodeFloat64(dtA, a, w.fa[:m])
		decoded += k
		if rb == nil {
			selfStats(w.fa[:k], s)
			continue
		}
		inspect.DecodeFloat64(dtB, rb[byteOffset(dtB, uint64(i)):], w.fb[:k])
		compareValues(w.fa[:k], w.fb[:k], s)
	}
}

// sameFiles remembers whether two paths name the same file (same device and
// inode): a tensor at the same place in the same file is identical to itself
// without reading it, which makes comparing a checkpoint with itself cost
// nothing but its headers.
type sameFiles map[[2]string]bool

func (m sameFiles) same(a, b string) bool {
	k := [2]string{a, b}
	if v, ok := m[k]; ok {
		return v
	}
	v := false
	if formats.IsRemote(a) || formats.IsRemote(b) {
		m[k] = a == b
		return a == b
	}
	if sa, err := os.Stat(a); err == nil {
		if sb, err := os.Stat(b); err == nil {
			v = os.SameFile(sa, sb) && sa.Size() == sb.Size()
		}
	}
	m[k] = v
	return v
}
