package diff

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/internal/synth"
	"github.com/ckpt-tool/ckpt/internal/teststore"
)

// A run directory in a store (listed through formats.FS, as an S3 prefix is)
// bisects to the same verdict, timeline and culprits as the same run on disk.
func TestBisectRunInStore(t *testing.T) {
	st := teststore.Register(t, "diffstore", true)
	local := filepath.Join(st.Root, "run")
	o := synth.RunOptions{Seed: 8}
	if _, err := synth.WriteRun(local, o); err != nil {
		t.Fatal(err)
	}
	bisect := func(dir string) *Report {
		t.Helper()
		es, err := Discover(dir)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Bisect(context.Background(), es, BisectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	want, got := bisect(local), bisect(st.URL(local))
	if len(got.Checkpoints) != len(want.Checkpoints) {
		t.Fatalf("%d checkpoints in the store, %d on disk", len(got.Checkpoints), len(want.Checkpoints))
	}
	for i, c := range got.Checkpoints {
		w := want.Checkpoints[i]
		if !strings.HasPrefix(c.Path, "diffstore://run/") || filepath.Base(c.Path) != filepath.Base(w.Path) {
			t.Errorf("checkpoint %d: %s, want the store's %s", i, c.Path, filepath.Base(w.Path))
		}
		if c.Step != w.Step || c.Verdict != w.Verdict {
			t.Errorf("%s: step %d %s, on disk %d %s", c.Path, c.Step, c.Verdict, w.Step, w.Verdict)
		}
	}
	if stepOf(got.FirstUnhealthy) != stepOf(want.FirstUnhealthy) || stepOf(got.LastHealthy) != stepOf(want.LastHealthy) {
		t.Errorf("verdict %v/%v, on disk %v/%v", got.LastHealthy, got.FirstUnhealthy, want.LastHealthy, want.FirstUnhealthy)
	}
	if len(got.Drift) != len(want.Drift) {
		t.Fatalf("%d drift points, on disk %d", len(got.Drift), len(want.Drift))
	}
	for i := range got.Drift {
		g, w := got.Drift[i].RelUpdate, want.Drift[i].RelUpdate
		if (g == nil) != (w == nil) || g != nil && *g != *w {
			t.Errorf("drift %d: %v, on disk %v", i, g, w)
		}
	}
	if got.TrainingLog == nil || !strings.HasPrefix(got.TrainingLog.Path, "diffstore://") {
		t.Errorf("training log not read from the store: %+v", got.TrainingLog)
	}
}
