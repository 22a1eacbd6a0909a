package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// TestAutoGood takes GOOD from a generated run with bisect's recommendation,
// then repairs with it; the run is left unchanged.
func TestAutoGood(t *testing.T) {
	run, truth := writeRun(t, synth.RunOptions{Seed: 5, Checkpoints: 8, JumpStep: 350, NaNStep: 650})
	ck := func(step int) string { return filepath.Join(run, fmt.Sprintf("checkpoint-%d", step)) }
	bad := ck(truth.FirstUnhealthy)
	before := treeDigest(t, run)
	a, err := autoGood(context.Background(), bad, diff.BisectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Step > truth.LastHealthy || a.Good != ck(a.Step) || a.Reason == "" || a.RunDir != run {
		t.Fatalf("auto chose %s (step %d, %q) in %s; the last healthy checkpoint is step %d", a.Good, a.Step, a.Reason, a.RunDir, truth.LastHealthy)
	}
	out := filepath.Join(t.TempDir(), "repaired")
	cliRun(t, "repair", "--no-progress", bad, "--from", a.Good, "-o", out).wantCode(t, 0)
	cliRun(t, "scan", "--no-progress", out).wantCode(t, 0)
	if treeDigest(t, run) != before {
		t.Error("the run changed")
	}

	// The first checkpoint of a run, and a checkpoint outside any run, have
	// nothing to repair from.
	if _, err := autoGood(context.Background(), ck(truth.Steps[0]), diff.BisectOptions{}); !errors.Is(err, errNoGood) {
		t.Errorf("first checkpoint: error %v, want errNoGood", err)
	}
	if _, err := autoGood(context.Background(), out, diff.BisectOptions{}); !errors.Is(err, errNoGood) {
		t.Errorf("not in a run: error %v, want errNoGood", err)
	}
}
