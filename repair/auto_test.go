package repair

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
// then repairs with it.
func TestAutoGood(t *testing.T) {
	run := t.TempDir()
	o := synth.RunOptions{Seed: 5, Checkpoints: 8, JumpStep: 350, NaNStep: 650}
	if _, err := synth.WriteRun(run, o); err != nil {
		t.Fatal(err)
	}
	truth, err := o.Truth()
	if err != nil {
		t.Fatal(err)
	}
	ck := func(step int) string { return filepath.Join(run, fmt.Sprintf("checkpoint-%d", step)) }
	bad := ck(truth.FirstUnhealthy)
	before := treeSums(t, run)
	a, err := AutoGood(context.Background(), bad, diff.BisectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Step > truth.LastHealthy || a.Good != ck(a.Step) || a.Reason == "" {
		t.Fatalf("auto chose %s (step %d, %q); the last healthy checkpoint is step %d", a.Good, a.Step, a.Reason, truth.LastHealthy)
	}
	out := filepath.Join(t.TempDir(), "repaired")
	if _, err := Run(context.Background(), Options{Bad: bad, Good: a.Good, Out: out}); err != nil {
		t.Fatal(err)
	}
	scanHealthy(t, out)
	assertUnchanged(t, before, run)

	// The first checkpoint of a run, and a checkpoint outside any run, have
	// nothing to repair from.
	if _, err := AutoGood(context.Background(), ck(truth.Steps[0]), diff.BisectOptions{}); !errors.Is(err, ErrNoGood) {
		t.Errorf("first checkpoint: error %v, want ErrNoGood", err)
	}
	if _, err := AutoGood(context.Background(), out, diff.BisectOptions{}); !errors.Is(err, ErrNoGood) {
		t.Errorf("not in a run: error %v, want ErrNoGood", err)
	}
}
