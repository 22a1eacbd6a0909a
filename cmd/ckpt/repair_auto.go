package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ckpt-tool/ckpt/diff"
)

// repair --from auto: choosing GOOD is orchestration (bisect the run, take
// what it recommends), so it lives with the command, and the repair package
// stays below diff.

// errNoGood means no checkpoint to take GOOD from could be found for
// --from auto.
var errNoGood = errors.New("no healthy checkpoint to repair from")

// repairAuto is how GOOD was chosen for --from auto: the run directory and
// bisect's recommendation.
type repairAuto struct {
	RunDir     string                   `json:"run_dir"`
	Good       string                   `json:"good"`
	Step       int                      `json:"step"`
	Reason     string                   `json:"reason"`
	Advice     []diff.Advice            `json:"advice"`
	Bisect     *diff.Report             `json:"-"`
	Considered []diff.CheckpointVerdict `json:"considered"`
}

// autoGood finds GOOD for a BAD that is a checkpoint directory of a training
// run (run/checkpoint-N): it bisects the run's checkpoints up to and including
// BAD (later ones say nothing about BAD) and takes the checkpoint bisect
// recommends rolling back to.
func autoGood(ctx context.Context, bad string, opts diff.BisectOptions) (*repairAuto, error) {
	abs, err := filepath.Abs(bad)
	if err != nil {
		return nil, err
	}
	runDir := filepath.Dir(abs)
	entries, err := diff.Discover(runDir)
	if err != nil {
		return nil, fmt.Errorf("%w: looking for BAD's run in %s: %w", errNoGood, runDir, err)
	}
	cut := -1
	for i, e := range entries {
		if samePath(e.Path, abs) {
			cut = i
		}
	}
	if cut < 0 {
		return nil, fmt.Errorf("%w: %s is not one of the checkpoint-N directories of %s", errNoGood, bad, runDir)
	}
	if cut == 0 {
		return nil, fmt.Errorf("%w: %s is the first checkpoint of its run; there is nothing earlier to repair from", errNoGood, bad)
	}
	if opts.RunDir == "" {
		opts.RunDir = runDir
	}
	rep, err := diff.Bisect(ctx, entries[:cut+1], opts)
	if err != nil {
		return nil, fmt.Errorf("bisecting %s: %w", runDir, err)
	}
	a := &repairAuto{RunDir: runDir, Reason: rep.Recommendation.Reason, Advice: rep.Recommendation.Advice, Bisect: rep, Considered: rep.Checkpoints}
	rb := rep.Recommendation.RollbackTo
	if rb == nil {
		return a, fmt.Errorf("%w: bisect recommends no checkpoint: %s", errNoGood, rep.Recommendation.Reason)
	}
	if samePath(rb.Path, abs) {
		return a, fmt.Errorf("%w: bisect finds BAD itself healthy (%s)", errNoGood, rep.Recommendation.Reason)
	}
	a.Good, a.Step = rb.Path, rb.Step
	return a, nil
}

// samePath reports whether a and b name the same existing file or directory.
func samePath(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
