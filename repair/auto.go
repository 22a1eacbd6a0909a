package repair

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/ckpt-tool/ckpt/diff"
)

// ErrNoGood means no checkpoint to take GOOD from could be found for
// --from auto.
var ErrNoGood = errors.New("no healthy checkpoint to repair from")

// Auto is how GOOD was chosen for --from auto: the run directory and bisect's
// recommendation.
type Auto struct {
	RunDir     string                   `json:"run_dir"`
	Good       string                   `json:"good"`
	Step       int                      `json:"step"`
	Reason     string                   `json:"reason"`
	Advice     []diff.Advice            `json:"advice"`
	Bisect     *diff.Report             `json:"-"`
	Considered []diff.CheckpointVerdict `json:"considered"`
}

// AutoGood finds GOOD for a BAD that is a checkpoint directory of a training
// run (run/checkpoint-N): it bisects the run's checkpoints up to and including
// BAD (later ones say nothing about BAD) and takes the checkpoint bisect
// recommends rolling back to.
func AutoGood(ctx context.Context, bad string, opts diff.BisectOptions) (*Auto, error) {
	abs, err := filepath.Abs(bad)
	if err != nil {
		return nil, err
	}
	runDir := filepath.Dir(abs)
	entries, err := diff.Discover(runDir)
	if err != nil {
		return nil, fmt.Errorf("%w: --from auto looks for BAD's run in %s: %v", ErrNoGood, runDir, err)
	}
	badReal := realPath(abs)
	cut := -1
	for i, e := range entries {
		if realPath(e.Path) == badReal {
			cut = i
		}
	}
	if cut < 0 {
		return nil, fmt.Errorf("%w: %s is not one of the checkpoint-N directories of %s; --from auto needs BAD to be a checkpoint of a run (give GOOD explicitly otherwise)", ErrNoGood, bad, runDir)
	}
	if cut == 0 {
		return nil, fmt.Errorf("%w: %s is the first checkpoint of its run; there is nothing earlier to repair from", ErrNoGood, bad)
	}
	if opts.RunDir == "" {
		opts.RunDir = runDir
	}
	rep, err := diff.Bisect(ctx, entries[:cut+1], opts)
	if err != nil {
		return nil, fmt.Errorf("bisecting %s: %w", runDir, err)
	}
	a := &Auto{RunDir: runDir, Reason: rep.Recommendation.Reason, Advice: rep.Recommendation.Advice, Bisect: rep, Considered: rep.Checkpoints}
	rb := rep.Recommendation.RollbackTo
	if rb == nil {
		return a, fmt.Errorf("%w: bisect recommends no checkpoint: %s", ErrNoGood, rep.Recommendation.Reason)
	}
	if realPath(rb.Path) == badReal {
		return a, fmt.Errorf("%w: bisect finds BAD itself healthy (%s); give GOOD explicitly to repair anyway", ErrNoGood, rep.Recommendation.Reason)
	}
	a.Good, a.Step = rb.Path, rb.Step
	return a, nil
}
