package watch

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/teststore"
)

// A run in a store (an S3 prefix, say) is watched by polling: the same
// checkpoint events as on disk, and checkpoints saved later are found.
func TestWatchRunInStore(t *testing.T) {
	staging, truth := stagedRun(t, synth.RunOptions{Seed: 5, Checkpoints: 4, JumpStep: 250, NaNStep: -1})
	st := teststore.Register(t, "watchstore", true)
	run := filepath.Join(st.Root, "run")
	for _, s := range truth.Steps[:3] {
		copyDir(t, filepath.Join(staging, stepName(s)), filepath.Join(run, stepName(s)), false)
	}
	local, remote := &recorder{}, &recorder{}
	if err := Run(context.Background(), run, local.options(Options{Once: true})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, st.URL(run), remote.options(Options{})) }()
	waitFor := func(n int) {
		t.Helper()
		for len(remote.checkpoints()) < n {
			if ctx.Err() != nil {
				t.Fatalf("%d checkpoint events, want %d; logs %q", len(remote.checkpoints()), n, remote.logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(3)
	last := truth.Steps[3]
	copyDir(t, filepath.Join(staging, stepName(last)), filepath.Join(run, stepName(last)), false)
	waitFor(4)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, want := remote.checkpoints(), local.checkpoints()
	for i, w := range want {
		g := got[i]
		if g.Step != w.Step || g.Verdict != w.Verdict || !strings.HasPrefix(g.Path, "watchstore://run/") ||
			(g.RelUpdate == nil) != (w.RelUpdate == nil) || g.RelUpdate != nil && *g.RelUpdate != *w.RelUpdate {
			t.Errorf("event %d: %+v, on disk %+v", i, g, w)
		}
	}
	if got[3].Step != last {
		t.Errorf("the checkpoint saved later: step %d, want %d", got[3].Step, last)
	}
	polling := false
	for _, l := range remote.logs {
		polling = polling || strings.Contains(l, "is remote: polling")
	}
	if !polling {
		t.Errorf("no note that a remote run is polled: %q", remote.logs)
	}
}

func stepName(step int) string { return "checkpoint-" + strconv.Itoa(step) }
