package diff

import (
	"context"
	"fmt"
)

// Splitting the drift timeline. The drift timeline of Bisect is the update
// between every two consecutive complete checkpoints up to the first
// unhealthy one. PairIntervals computes a share of those updates (part k of
// n: a contiguous run of consecutive pairs of every complete checkpoint, not
// knowing where the first unhealthy one is) and BisectOptions.Intervals hands
// every part's intervals to Bisect, which then compares nothing itself.

// PairRange is the pairs of part k of n among pairs consecutive pairs: pairs
// i with lo <= i < hi, where pair i is complete checkpoints i and i+1. The
// pairs are cut into n runs whose lengths differ by one at most.
func PairRange(pairs, k, n int) (lo, hi int) {
	return k * pairs / n, (k + 1) * pairs / n
}

// CompleteEntries are the complete checkpoints of a series, in order.
func CompleteEntries(entries []*Entry) []*Entry {
	var out []*Entry
	for _, e := range entries {
		if e.Incomplete == "" {
			out = append(out, e)
		}
	}
	return out
}

// PairIntervals computes the drift intervals of part k of n (see PairRange)
// of the consecutive pairs of complete checkpoints of entries, reading each
// checkpoint of the run once, and names top tensors and layers per interval
// (0 means 5, as in Bisect).
func PairIntervals(ctx context.Context, entries []*Entry, k, n, top int, opts Options) ([]Interval, error) {
	if top <= 0 {
		top = 5
	}
	es := CompleteEntries(entries)
	out := []Interval{}
	if len(es) < 2 {
		return out, nil
	}
	lo, hi := PairRange(len(es)-1, k, n)
	if lo == hi {
		return out, nil
	}
	run := es[lo : hi+1]
	paths := make([]string, len(run))
	for i, e := range run {
		paths[i] = e.Path
	}
	results, err := CompareSeries(ctx, paths, opts)
	if err != nil {
		return nil, fmt.Errorf("measuring drift from %s to %s: %w", paths[0], paths[len(paths)-1], err)
	}
	for i, res := range results {
		out = append(out, NewInterval(run[i], run[i+1], res, top))
	}
	return out, nil
}
