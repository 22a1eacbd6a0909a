package diff

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/ckpt-tool/ckpt/formats"
)

// CompareSeries compares each checkpoint of a series with the next one: result
// i is exactly what ComparePaths(paths[i], paths[i+1]) returns (the same
// chunks, merged in the same order), but each checkpoint's tensor bytes are
// read once rather than twice. The work is a chunk of one tensor followed
// through the series, piece by piece (compare_piece.go): a piece of
// checkpoint 0 is read, then that of checkpoint 1 (pair 0 is folded), then
// that of checkpoint 2 (pair 1 is folded), holding only the previous
// checkpoint's piece, then the next piece; the workers take such chunks in
// parallel, so a worker holds two pieces at most. A tensor is
// followed as far as it keeps its chunking (its shape and dtype); where it
// changes, the next checkpoint's chunk is read again. Progress, if set, is
// called with each checkpoint's bytes as they are consumed.
func CompareSeries(ctx context.Context, paths []string, opts Options) ([]*Result, error) {
	cs := make([]*formats.Checkpoint, len(paths))
	for i, p := range paths {
		c, err := formats.Open(p)
		if err != nil {
			return nil, err
		}
		cs[i] = c.Weights() // the drift of the weights: optimizer moments are no part of it
	}
	return CompareCheckpoints(ctx, cs, opts)
}

// CompareCheckpoints is CompareSeries over checkpoints already opened: result
// i is Compare(cs[i], cs[i+1]).
func CompareCheckpoints(ctx context.Context, cs []*formats.Checkpoint, opts Options) ([]*Result, error) {
	if len(cs) < 2 {
		return nil, nil
	}
	chunk := opts.chunkBytes()
	files := sameFiles{}
	plans := make([]*pairPlan, len(cs)-1)
	for i := range plans {
		plans[i] = planPair(cs[i], cs[i+1], chunk, files, nil)
	}
	srcs, err := openSources(cs...)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	e := &engine{srcs: srcs, opts: opts}
	chains := buildChains(plans)
	if err := runChains(ctx, e, plans, chains); err != nil {
		return nil, err
	}
	out := make([]*Result, len(plans))
	for k, p := range plans {
		if err := p.finish(ctx, srcs, opts); err != nil {
			return nil, err
		}
		out[k] = p.r
	}
	return out, nil
}

// pairPlan is one comparison of a series: what Compare plans before it reads.
type pairPlan struct {
	r       *Result
	pairs   []*pairWork
	tasks   []task
	results []chunkResult
	byA     map[*formats.Tensor]int // index in pairs, by the tensor of A
}

// planPair lists the tensors of a and b and the tasks of those compared by
// value: the plan of one Compare, and of each pair of a series.
func planPair(a, b *formats.Checkpoint, chunk int, files sameFiles, cp *crossPlan) *pairPlan {
	r := &Result{A: a.Path, B: b.Path}
	for _, c := range []*formats.Checkpoint{a, b} {
		for _, p := range c.AllProblems() {
			if p.Severity == formats.SevError {
				r.Problems = append(r.Problems, p)
			}
		}
	}
	pl := &pairPlan{r: r, byA: map[*formats.Tensor]int{}}
	seen := map[string]bool{}
	for _, ta := range a.Tensors {
		if seen[ta.Name] || a.Tensor(ta.Name) != ta {
			continue
		}
		seen[ta.Name] = true
		d := &TensorDiff{Name: ta.Name, DTypeA: ta.DType, ShapeA: ta.Shape}
		r.Tensors = append(r.Tensors, d)
		tb := b.Tensor(ta.Name)
		if tb == nil {
			d.Status = OnlyA
			continue
		}
		d.DTypeB, d.ShapeB = tb.DType, tb.Shape
		switch {
		case !slices.Equal(ta.Shape, tb.Shape):
			d.Status = ShapeChanged
			continue
		case ta.Cut || tb.Cut:
			d.Status, d.Reason = Unreadable, cutReason(ta, tb)
			continue
		case ta.DType != tb.DType:
			d.Status = DTypeChanged
			if scalarCount(ta) != scalarCount(tb) {
				continue
			}
		}
		if why := undecoded(ta, tb); why != "" {
			d.Status, d.Reason = Unreadable, why
			continue
		}
		var perm *rowPerm
		if cp != nil {
			if why, ok := cp.skip[ta.Name]; ok {
				d.Status, d.Reason = Unreadable, why
				continue
			}
			if p, ok := cp.perms[ta.Name]; ok {
				perm = &p
			}
		}
		pw := &pairWork{d: d, ta: ta, tb: tb, first: len(pl.tasks), perm: perm}
		pw.same = ta.DType == tb.DType && ta.Offset == tb.Offset && ta.Length() == tb.Length() && slices.Equal(ta.Strides, tb.Strides) && files.same(ta.File.Path, tb.File.Path)
		bits := uint64(max(scalarBits(ta.DType), scalarBits(tb.DType)))
		// Powers of two: the larger alignment is a multiple of the smaller. A
		// permuted tensor is cut into whole heads, so that its rows are
		// reordered within a chunk.
		align := max(scalarAlign(ta.DType), scalarAlign(tb.DType))
		if perm != nil {
			align = lcm(align, uint64(perm.headRows)*perm.cols)
		}
		per := max(align, uint64(chunk)*8/bits/align*align)
		n := scalarCount(ta)
		for s := uint64(0); s < n || s == 0; s += per {
			pl.tasks = append(pl.tasks, task{pair: len(pl.pairs), s0: s, s1: min(n, s+per)})
			if n == 0 {
				break
			}
		}
		pw.ntask = len(pl.tasks) - pw.first
		pl.byA[ta] = len(pl.pairs)
		pl.pairs = append(pl.pairs, pw)
	}
	for _, tb := range b.Tensors {
		if seen[tb.Name] || b.Tensor(tb.Name) != tb {
			continue
		}
		seen[tb.Name] = true
		r.Tensors = append(r.Tensors, &TensorDiff{Name: tb.Name, Status: OnlyB, DTypeB: tb.DType, ShapeB: tb.Shape})
	}
	pl.results = make([]chunkResult, len(pl.tasks))
	return pl
}

// chain is one tensor followed through consecutive comparisons first,
// first+1, …: the B tensor of each is the A tensor of the next, cut into the
// same tasks, so each chunk read serves two comparisons.
type chain struct {
	first int         // index of the first comparison
	pws   []*pairWork // one per comparison
}

// buildChains covers every compared tensor of every comparison by chains.
func buildChains(plans []*pairPlan) []*chain {
	used := make([][]bool, len(plans))
	for k, p := range plans {
		used[k] = make([]bool, len(p.pairs))
	}
	var out []*chain
	for k, p := range plans {
		for i, pw := range p.pairs {
			if used[k][i] {
				continue
			}
			used[k][i] = true
			c := &chain{first: k, pws: []*pairWork{pw}}
			for n := k + 1; n < len(plans); n++ {
				last := c.pws[len(c.pws)-1]
				j, ok := plans[n].byA[last.tb]
				if !ok || used[n][j] || !sameTasks(plans[n-1], last, plans[n], plans[n].pairs[j]) {
					break
				}
				used[n][j] = true
				c.pws = append(c.pws, plans[n].pairs[j])
			}
			out = append(out, c)
		}
	}
	return out
}

// sameTasks reports whether two pairs' tasks cover the same scalar ranges.
func sameTasks(pa *pairPlan, a *pairWork, pb *pairPlan, b *pairWork) bool {
	if a.ntask != b.ntask {
		return false
	}
	for i := 0; i < a.ntask; i++ {
		x, y := pa.tasks[a.first+i], pb.tasks[b.first+i]
		if x.s0 != y.s0 || x.s1 != y.s1 {
			return false
		}
	}
	return true
}

// job is task j of every comparison of a chain.
type job struct {
	c *chain
	j int
}

// runChains runs every chain's tasks over a pool of workers.
func runChains(ctx context.Context, e *engine, plans []*pairPlan, chains []*chain) error {
	var jobs []job
	for _, c := range chains {
		for j := 0; j < c.pws[0].ntask; j++ {
			jobs = append(jobs, job{c, j})
		}
	}
	return runPool(ctx, e.opts.Workers, jobs, func(wk *worker, jb job) {
		wk.follow(ctx, e, plans, jb)
	})
}

// follow runs task j of each comparison of a chain in order, reading each
// checkpoint's chunk once, piece by piece (compare_piece.go): piece p of
// checkpoint 0 is read, then that of checkpoint 1 (folded into pair 0's
// chunk result), of checkpoint 2 (pair 1's), and so on, holding the previous
// checkpoint's piece in w.bufA when held is true, with whether its values
// are all in the narrow range (inNarrowRange: taken once for the piece's two
// pairs); then piece p+1. Each pair's
// chunk result gets its pieces in order, so it is that of the chunk read
// whole. An identical chunk gets its norms at once from the bytes in hand
// (finish drops them when the comparison changed nothing); a chunk that lies
// at the same place of the same file on both sides is not read, and gets its
// norms in finish's second pass unless A's bytes are already in hand.
func (w *worker) follow(ctx context.Context, e *engine, plans []*pairPlan, jb job) {
	pws := jb.c.pws
	tk := plans[jb.c.first].tasks[pws[0].first+jb.j] // every comparison's task j covers the same values
	step := tk.s1 - tk.s0
	for _, pw := range pws {
		if p := pieceScalars(pw); p > 0 {
			step = min(step, p)
		} else {
			step = tk.s1 - tk.s0
			break
		}
	}
	step = max(step, 1)
	progress := func(n int) {
		if e.opts.Progress != nil && n > 0 {
			e.opts.Progress(int64(n))
		}
	}
	type stepState struct {
		res            chunkResult
		differ, missed bool // a piece differed; a piece went without its norms
		a, b           pieceReader
	}
	st := make([]stepState, len(pws))
	for k, pw := range pws {
		st[k].a, st[k].b = newPieceReader(e, pw.ta), newPieceReader(e, pw.tb)
	}
	for s := tk.s0; s < tk.s1 || s == tk.s0; s += step {
		if ctx.Err() != nil {
			return
		}
		s1 := min(tk.s1, s+step)
		n := int(s1 - s)
		held, inA := false, false
		var ra []byte
		for k, pw := range pws {
			x := &st[k]
			if pw.same {
				if held && x.res.err == nil {
					w.foldIn(n, pw.ta.DType, ra, pw.tb.DType, nil, inA, &x.res.stats)
				} else {
					x.missed = true
				}
				// B's bytes are A's: what is held stands for the next A too.
				lo, hi := byteRange(pw.tb, s, s1)
				progress(int(hi - lo))
				continue
			}
			if !held {
				b, err := x.a.read(e, s, s1, &w.bufA, 0, 0)
				if err != nil {
					if x.res.err == nil {
						x.res.err = err
					}
					continue // the next comparison reads this B again, as its A
				}
				ra, held = b, true
				inA = inNarrowRange(pw.ta.DType, ra)
				progress(len(b))
			}
			rb, err := x.b.read(e, s, s1, &w.bufB, 0, 0)
			if err != nil {
				if x.res.err == nil {
					x.res.err = err
				}
				held = false
				continue
			}
			progress(len(rb))
			same := pw.ta.DType == pw.tb.DType && bytes.Equal(ra, rb)
			inB := inA
			if !same {
				inB = inNarrowRange(pw.tb.DType, rb)
			}
			if x.res.err == nil {
				if same {
					w.foldIn(n, pw.ta.DType, ra, pw.tb.DType, nil, inA, &x.res.stats)
				} else {
					x.differ = true
					w.foldIn(n, pw.ta.DType, ra, pw.tb.DType, rb, inA && inB, &x.res.stats)
				}
			}
			w.bufA, w.bufB = w.bufB, w.bufA
			ra, inA = rb, inB
		}
		if s1 == tk.s1 {
			break
		}
	}
	for k, pw := range pws {
		x := &st[k]
		res := x.res
		if res.err != nil {
			res = chunkResult{err: res.err}
		} else {
			res.identical = pw.same || !x.differ && pw.ta.DType == pw.tb.DType
			res.normed = !x.missed
		}
		plans[jb.c.first+k].results[pw.first+jb.j] = res
	}
}

// finish completes one comparison as Compare does: the norms of identical
// chunks are kept only when some chunk changed (the few not yet known are
// read from A), then the tensors are merged, aggregated and sorted.
func (p *pairPlan) finish(ctx context.Context, srcs map[string]formats.Source, opts Options) error {
	anyChanged := false
	for _, res := range p.results {
		if !res.identical && res.err == nil {
			anyChanged = true
		}
	}
	if anyChanged {
		var again []int
		for i, res := range p.results {
			if res.identical && !res.normed {
				again = append(again, i)
			}
		}
		e := &engine{pairs: p.pairs, tasks: p.tasks, srcs: srcs, opts: opts, results: p.results}
		if err := e.run(ctx, again, true); err != nil {
			return err
		}
	} else {
		for i, res := range p.results {
			if res.identical {
				p.results[i] = chunkResult{identical: true}
			}
		}
	}
	for _, pw := range p.pairs {
		finishPair(pw, p.results[pw.first:pw.first+pw.ntask])
	}
	p.r.aggregate()
	SortByChange(p.r.Tensors)
	return nil
}

// undecoded says why the values of ta or tb cannot be compared (a ggml type
// whose values are not decoded), or "".
func undecoded(ta, tb *formats.Tensor) string {
	for _, t := range []*formats.Tensor{ta, tb} {
		if bt, _, ok := t.DType.Block(); ok && !bt.Decodes() {
			return fmt.Sprintf("%s values are not decoded (only their block scales are checked by scan)", t.DType)
		}
	}
	return ""
}

func lcm(a, b uint64) uint64 {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	return a / x * b
}
