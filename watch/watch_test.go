package watch

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/diff"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// stagedRun writes a generated diverging run into a staging directory (not
// the watched one) and returns it with its truth.
func stagedRun(t *testing.T, o synth.RunOptions) (string, synth.RunTruth) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "staging")
	truth, err := synth.WriteRunTruth(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return dir, truth
}

// copyDir plays one save of the trainer: src's files into dst, trainer_state.json last unless skipState.
func copyDir(t *testing.T, src, dst string, skipState bool) {
	t.Helper()
	if err := synth.CopyCheckpoint(src, dst, !skipState); err != nil {
		t.Fatal(err)
	}
}

// recorder collects events and log lines.
type recorder struct {
	mu     sync.Mutex
	events []Event
	logs   []string
}

func (r *recorder) options(o Options) Options {
	o.Emit = func(e Event) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.events = append(r.events, e)
		return nil
	}
	o.Log = func(format string, args ...any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.logs = append(r.logs, fmt.Sprintf(format, args...))
	}
	return o
}

func (r *recorder) checkpoints() []*CheckpointEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*CheckpointEvent
	for _, e := range r.events {
		if c, ok := e.(*CheckpointEvent); ok {
			out = append(out, c)
		}
	}
	return out
}

func TestOnceMatchesBisect(t *testing.T) {
	staging, truth := stagedRun(t, synth.RunOptions{Seed: 5, Checkpoints: 9, JumpStep: 450, NaNStep: 750})
	rec := &recorder{}
	if err := Run(context.Background(), staging, rec.options(Options{Once: true})); err != nil {
		t.Fatal(err)
	}
	cps := rec.checkpoints()
	if len(cps) != len(truth.Steps) {
		t.Fatalf("%d checkpoint events for %d checkpoints", len(cps), len(truth.Steps))
	}
	// The same updates and onset as bisect's drift timeline.
	es, err := diff.Discover(staging)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := diff.Bisect(context.Background(), es, diff.BisectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, iv := range rep.Drift {
		for _, c := range cps {
			if c.Step == iv.ToStep && (c.RelUpdate == nil) != (iv.RelUpdate == nil) || c.Step == iv.ToStep && c.RelUpdate != nil && *c.RelUpdate != *iv.RelUpdate {
				t.Errorf("step %d: watch update %v, bisect %v", c.Step, c.RelUpdate, iv.RelUpdate)
			}
		}
	}
	var onset *OnsetEvent
	var firstBad *UnhealthyEvent
	for _, e := range rec.events {
		switch e := e.(type) {
		case *OnsetEvent:
			onset = e
		case *UnhealthyEvent:
			if firstBad == nil {
				firstBad = e
			}
		}
	}
	if onset == nil || rep.DriftOnset == nil || onset.ToStep != rep.DriftOnset.ToStep || onset.ToStep != truth.DriftTo {
		t.Errorf("onset %+v, bisect %+v, truth %d → %d", onset, rep.DriftOnset, truth.DriftFrom, truth.DriftTo)
	}
	if firstBad == nil || firstBad.Step != truth.FirstUnhealthy || len(firstBad.Culprits) == 0 {
		t.Errorf("first unhealthy %+v, want step %d", firstBad, truth.FirstUnhealthy)
	}
}

func TestIncompleteCheckpointWaitedFor(t *testing.T) {
	staging, truth := stagedRun(t, synth.RunOptions{Seed: 2, Checkpoints: 3, JumpStep: 150, NaNStep: -1})
	run := filepath.Join(t.TempDir(), "run")
	copyDir(t, filepath.Join(staging, truth.Dirs[0]), filepath.Join(run, truth.Dirs[0]), false)
	// The second: weights only, and its shard cut short, as while being written.
	half := filepath.Join(run, truth.Dirs[1])
	copyDir(t, filepath.Join(staging, truth.Dirs[1]), half, true)
	w := filepath.Join(half, "model.safetensors")
	fi, err := os.Stat(w)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(w, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := Run(context.Background(), run, rec.options(Options{Once: true})); err != nil {
		t.Fatal(err)
	}
	if cps := rec.checkpoints(); len(cps) != 1 || cps[0].Step != truth.Steps[0] {
		t.Fatalf("events %+v: want only the complete checkpoint", rec.events)
	}
	if !strings.Contains(strings.Join(rec.logs, "\n"), "not complete yet") {
		t.Errorf("logs %q do not say the half-written checkpoint was left for later", rec.logs)
	}

	// --settle: a trainer without state files. Complete once quiet for Settle.
	os.Remove(filepath.Join(run, truth.Dirs[0], "trainer_state.json"))
	rec = &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, run, rec.options(Options{Settle: 300 * time.Millisecond, Poll: 20 * time.Millisecond}))
	}()
	time.Sleep(150 * time.Millisecond)
	if n := len(rec.checkpoints()); n != 0 {
		t.Errorf("%d checkpoints reported before they were quiet for --settle", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.checkpoints()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cps := rec.checkpoints()
	if len(cps) != 2 || cps[0].Verdict != Healthy || cps[1].Verdict != Unhealthy {
		t.Fatalf("with --settle, events %+v: want checkpoint-%d healthy and the truncated one unhealthy", rec.events, truth.Steps[0])
	}
}

func TestKeepLinkAndCopy(t *testing.T) {
	staging, truth := stagedRun(t, synth.RunOptions{Seed: 4, Checkpoints: 3, JumpStep: 150, NaNStep: -1})
	for _, copyOnly := range []bool{false, true} {
		t.Run(fmt.Sprint("copy=", copyOnly), func(t *testing.T) {
			keepDir := filepath.Join(t.TempDir(), "keep")
			k, err := newKeeper(keepDir, copyOnly)
			if err != nil {
				t.Fatal(err)
			}
			a := &diff.Entry{Path: filepath.Join(staging, truth.Dirs[0]), Step: truth.Steps[0]}
			b := &diff.Entry{Path: filepath.Join(staging, truth.Dirs[1]), Step: truth.Steps[1]}
			evs, err := k.keep(a, ReasonNewestHealthy)
			if err != nil {
				t.Fatal(err)
			}
			want := "hardlink"
			if copyOnly {
				want = "copy"
			}
			if evs[0].Method != want {
				t.Errorf("method %s, want %s", evs[0].Method, want)
			}
			if _, err := k.keep(a, ReasonBeforeDrift); err != nil {
				t.Fatal(err)
			}
			evs, err = k.keep(b, ReasonNewestHealthy)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs[0].Released) != 0 {
				t.Errorf("released %v though the older copy is still kept as before the drift", evs[0].Released)
			}
			c := &diff.Entry{Path: filepath.Join(staging, truth.Dirs[2]), Step: truth.Steps[2]}
			if _, err := k.keep(c, ReasonNewestHealthy); err != nil {
				t.Fatal(err)
			}
			des, _ := os.ReadDir(keepDir)
			var names []string
			for _, de := range des {
				names = append(names, de.Name())
			}
			if got, want := strings.Join(names, " "), truth.Dirs[0]+" "+truth.Dirs[2]+" "+ManifestName; got != want {
				t.Errorf("keep directory holds %q, want %q (no temporary names left)", got, want)
			}
			for _, e := range []*diff.Entry{a, c} {
				sameFiles(t, e.Path, filepath.Join(keepDir, filepath.Base(e.Path)), !copyOnly)
			}
		})
	}
}

// sameFiles checks that dir b holds the files of dir a, byte for byte (and
// as the same inodes when linked).
func sameFiles(t *testing.T, a, b string, linked bool) {
	t.Helper()
	des, err := os.ReadDir(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		pa, pb := filepath.Join(a, de.Name()), filepath.Join(b, de.Name())
		da, _ := os.ReadFile(pa)
		db, err := os.ReadFile(pb)
		if err != nil || !bytes.Equal(da, db) {
			t.Errorf("%s: not byte-identical to %s (%v)", pb, pa, err)
		}
		fa, _ := os.Stat(pa)
		fb, _ := os.Stat(pb)
		if fa != nil && fb != nil && os.SameFile(fa, fb) != linked {
			t.Errorf("%s: hard link %v, want %v", pb, os.SameFile(fa, fb), linked)
		}
	}
}

// With a rotation keeping only the newest checkpoint, the previous one is
// gone by the time the next is checked: its kept copy stands in for it, so
// the update is still measured (and equals the one measured on the originals).
func TestCompareWithKeptCopyAfterRotation(t *testing.T) {
	staging, truth := stagedRun(t, synth.RunOptions{Seed: 6, Checkpoints: 2, JumpStep: 150, NaNStep: -1})
	run := filepath.Join(t.TempDir(), "run")
	rec := &recorder{}
	w, err := newWatcher(run+"/../run", rec.options(Options{Keep: filepath.Join(t.TempDir(), "keep")}))
	if err == nil || w != nil {
		t.Fatalf("a missing run directory: %v", err)
	}
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	w, err = newWatcher(run, rec.options(Options{Keep: filepath.Join(t.TempDir(), "keep")}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	copyDir(t, filepath.Join(staging, truth.Dirs[0]), filepath.Join(run, truth.Dirs[0]), false)
	if err := w.look(ctx, false); err != nil {
		t.Fatal(err)
	}
	copyDir(t, filepath.Join(staging, truth.Dirs[1]), filepath.Join(run, truth.Dirs[1]), false)
	os.RemoveAll(filepath.Join(run, truth.Dirs[0])) // save_total_limit=1
	if err := w.look(ctx, false); err != nil {
		t.Fatal(err)
	}
	cps := rec.checkpoints()
	if len(cps) != 2 || cps[1].RelUpdate == nil {
		t.Fatalf("events %+v, logs %q: want the second checkpoint's update measured", rec.events, rec.logs)
	}
	res, err := diff.ComparePaths(ctx, filepath.Join(staging, truth.Dirs[0]), filepath.Join(staging, truth.Dirs[1]), diff.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := res.RelL2(); *cps[1].RelUpdate != want {
		t.Errorf("update %v measured against the kept copy, %v on the originals", *cps[1].RelUpdate, want)
	}
}

// A complete checkpoint without weights ckpt reads (a format it does not know)
// is not damaged: it is left out with a note.
func TestCheckpointWithoutWeights(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	ck := filepath.Join(run, "checkpoint-5")
	if err := os.MkdirAll(ck, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ck, "model.onnx"), []byte("onnx"), 0o644)
	os.WriteFile(filepath.Join(ck, "trainer_state.json"), []byte(`{"global_step": 5, "log_history": []}`), 0o644)
	rec := &recorder{}
	if err := Run(context.Background(), run, rec.options(Options{Once: true})); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 0 || !strings.Contains(strings.Join(rec.logs, "\n"), "no weights ckpt reads") {
		t.Errorf("events %+v, logs %q", rec.events, rec.logs)
	}
}

// An interrupted save deleted by the trainer is noted, and a later save of
// the same step is checked.
func TestInterruptedSaveDeletedThenSavedAgain(t *testing.T) {
	staging, truth := stagedRun(t, synth.RunOptions{Seed: 8, Checkpoints: 2, JumpStep: 150, NaNStep: -1})
	run := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	w, err := newWatcher(run, rec.options(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, dst := filepath.Join(staging, truth.Dirs[0]), filepath.Join(run, truth.Dirs[0])
	copyDir(t, src, dst, true) // no trainer_state.json yet
	if err := w.look(ctx, false); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dst)
	if err := w.look(ctx, false); err != nil {
		t.Fatal(err)
	}
	copyDir(t, src, dst, false)
	if err := w.look(ctx, false); err != nil {
		t.Fatal(err)
	}
	if cps := rec.checkpoints(); len(cps) != 1 || cps[0].Step != truth.Steps[0] {
		t.Errorf("events %+v: want the re-saved checkpoint checked once", rec.events)
	}
	if !strings.Contains(strings.Join(rec.logs, "\n"), "deleted before it was complete") {
		t.Errorf("logs %q", rec.logs)
	}
}

// A run resumed from an earlier checkpoint saves its steps again, in place
// over the failed attempt's checkpoints: each new save is checked (the stale
// unhealthy checkpoint is not held against it) and the updates start over.
// With NewOnly, the failed attempt's checkpoints are not checked at all.
func TestResumedRunSavesAgain(t *testing.T) {
	failed, truth := stagedRun(t, synth.RunOptions{Seed: 3, Checkpoints: 4, JumpStep: 150, NaNStep: 350})
	resumed, _ := stagedRun(t, synth.RunOptions{Seed: 4, Checkpoints: 4, JumpStep: 150, NaNStep: -1})
	for _, newOnly := range []bool{false, true} {
		t.Run(fmt.Sprint("new-only=", newOnly), func(t *testing.T) {
			run := filepath.Join(t.TempDir(), "run")
			for _, d := range truth.Dirs {
				copyDir(t, filepath.Join(failed, d), filepath.Join(run, d), false)
			}
			rec := &recorder{}
			w, err := newWatcher(run, rec.options(Options{NewOnly: newOnly, Keep: filepath.Join(t.TempDir(), "keep")}))
			if err != nil {
				t.Fatal(err)
			}
			if newOnly {
				w.skipExisting()
			}
			ctx := context.Background()
			if err := w.look(ctx, false); err != nil {
				t.Fatal(err)
			}
			before := len(rec.checkpoints())
			if want := map[bool]int{false: 4, true: 0}[newOnly]; before != want {
				t.Fatalf("%d checkpoints of the failed attempt checked, want %d", before, want)
			}
			time.Sleep(10 * time.Millisecond)  // a new modification time for the re-saved state
			for _, d := range truth.Dirs[2:] { // resumed from step 200: 300 and 400 saved again
				copyDir(t, filepath.Join(resumed, d), filepath.Join(run, d), false)
				if err := w.look(ctx, false); err != nil {
					t.Fatal(err)
				}
			}
			cps := rec.checkpoints()[before:]
			if len(cps) != 2 || cps[0].Step != truth.Steps[2] || cps[1].Step != truth.Steps[3] ||
				cps[0].Verdict != Healthy || cps[1].Verdict != Healthy {
				t.Fatalf("after the resume: %+v", cps)
			}
			if cps[0].RelUpdate != nil || cps[1].RelUpdate == nil {
				t.Errorf("updates %v, %v: want none for the first save after the resume, one for the next", cps[0].RelUpdate, cps[1].RelUpdate)
			}
			logs := strings.Join(rec.logs, "\n")
			if !newOnly && !strings.Contains(logs, "resumed from an earlier checkpoint") {
				t.Errorf("logs %q do not say the run was resumed", rec.logs)
			}
			// The failed attempt's newest healthy checkpoint (300) was kept by
			// hard links; saved again in place, its copy follows: said so.
			if !newOnly && !strings.Contains(logs, "follows the new save") {
				t.Errorf("logs %q do not warn that the kept hard-linked copy follows the in-place save", rec.logs)
			}
		})
	}
}

// A watch started before the trainer creates its output directory waits for it.
func TestRunDirCreatedLater(t *testing.T) {
	staging, truth := stagedRun(t, synth.RunOptions{Seed: 2, Checkpoints: 2, JumpStep: 150, NaNStep: -1})
	run := filepath.Join(t.TempDir(), "later")
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, run, rec.options(Options{Poll: 20 * time.Millisecond})) }()
	time.Sleep(100 * time.Millisecond)
	copyDir(t, filepath.Join(staging, truth.Dirs[0]), filepath.Join(run, truth.Dirs[0]), false)
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.checkpoints()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(rec.checkpoints()) != 1 {
		t.Errorf("events %+v, logs %q", rec.events, rec.logs)
	}
}
