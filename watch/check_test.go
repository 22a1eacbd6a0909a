package watch

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// countingSource counts the bytes read through it into its file's total.
type countingSource struct {
	formats.Source
	mu    *sync.Mutex
	count map[string]int64
}

func (c countingSource) ReadAt(b []byte, off int64) (int, error) {
	n, err := c.Source.ReadAt(b, off)
	c.mu.Lock()
	c.count[c.Source.Path()] += int64(n)
	c.mu.Unlock()
	return n, err
}

// TestEachCheckpointReadOnceMore counts the bytes read from every weight
// file while a run is watched: each checkpoint is read once for its scan and
// its comparison with the previous one, and once more as the previous one of
// the next comparison (not when it is unhealthy: no update is measured from
// it). Its findings are those of a scan of its own.
func TestEachCheckpointReadOnceMore(t *testing.T) {
	staging, truth := stagedRun(t, synth.RunOptions{Seed: 7, Shards: 2, Checkpoints: 6, JumpStep: 250, NaNStep: 450})
	var mu sync.Mutex
	count := map[string]int64{}
	restore := formats.SetSourceOpener(func(path string, mode formats.SourceMode) (formats.Source, error) {
		src, err := formats.DefaultOpenSource(path, formats.Pread)
		if err != nil {
			return nil, err
		}
		return countingSource{Source: src, mu: &mu, count: count}, nil
	})
	defer restore()
	rec := &recorder{}
	if err := Run(context.Background(), staging, rec.options(Options{Once: true, Scan: inspect.Options{Workers: 2}})); err != nil {
		t.Fatal(err)
	}
	restore()
	cps := rec.checkpoints()
	if len(cps) != len(truth.Steps) {
		t.Fatalf("%d checkpoint events for %d checkpoints", len(cps), len(truth.Steps))
	}
	unhealthy := 0
	for i, ev := range cps {
		c, err := formats.Open(filepath.Join(staging, truth.Dirs[i]))
		if err != nil {
			t.Fatal(err)
		}
		times := int64(1)
		if i+1 < len(cps) && ev.Verdict == Healthy {
			times = 2
		}
		if ev.Verdict != Healthy {
			unhealthy++
		}
		data := map[string]int64{}
		for _, tn := range c.Tensors {
			data[tn.File.Path] += tn.Length()
		}
		if len(data) != 2 {
			t.Fatalf("%s: %d weight files, want 2 shards", c.Path, len(data))
		}
		for path, n := range data {
			if got := count[path]; got != times*n {
				t.Errorf("step %d (%s): %s read %d bytes, want its %d bytes of tensor data %d time(s)", ev.Step, ev.Verdict, filepath.Base(path), got, n, times)
			}
		}
		r, err := inspect.Scan(context.Background(), c, inspect.Options{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		want := []inspect.Finding{}
		for _, f := range r.Findings {
			if f.Severity == "error" || f.Severity == "warning" {
				want = append(want, f)
			}
		}
		if !reflect.DeepEqual(ev.Findings, want) {
			t.Errorf("step %d: findings %+v, a scan of its own finds %+v", ev.Step, ev.Findings, want)
		}
	}
	if unhealthy == 0 || unhealthy == len(cps) || cps[1].RelUpdate == nil {
		t.Errorf("the run should hold healthy checkpoints, measured updates and unhealthy ones: %d unhealthy of %d", unhealthy, len(cps))
	}
}

// TestPreviousDeletedBeforeComparison: when the previous checkpoint is
// deleted (no kept copy) before the next one is checked, the comparison
// cannot be made: the checkpoint is scanned alone, with no update, and a
// note says why.
func TestPreviousDeletedBeforeComparison(t *testing.T) {
	staging, truth := stagedRun(t, synth.RunOptions{Seed: 8, Checkpoints: 2, JumpStep: 150, NaNStep: -1})
	rec := &recorder{}
	o := rec.options(Options{Once: true})
	emit := o.Emit
	o.Emit = func(e Event) error {
		if c, ok := e.(*CheckpointEvent); ok && c.Step == truth.Steps[0] {
			if err := os.RemoveAll(c.Path); err != nil {
				t.Fatal(err)
			}
		}
		return emit(e)
	}
	if err := Run(context.Background(), staging, o); err != nil {
		t.Fatal(err)
	}
	cps := rec.checkpoints()
	if len(cps) != 2 || cps[1].RelUpdate != nil || cps[1].Verdict != Healthy {
		t.Fatalf("events %+v: want the second checkpoint healthy, with no update", rec.events)
	}
	if !strings.Contains(strings.Join(rec.logs, "\n"), "no update measured") {
		t.Errorf("no note on the comparison that could not be made: %q", rec.logs)
	}
}
