package main

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt-tool/ckpt/internal/synth"
)

// bisectDoc is the JSON of ckpt bisect, as a user's program reads it.
type bisectDoc struct {
	Checkpoints []struct {
		Path, Verdict string
		Step          int
	}
	Scanned     []struct{ Path string }
	LastHealthy *struct {
		Path string
		Step int
	} `json:"last_healthy"`
	FirstUnhealthy *struct {
		Path string
		Step int
	} `json:"first_unhealthy"`
	Culprits []map[string]any
	Drift    []struct {
		FromStep   int      `json:"from_step"`
		ToStep     int      `json:"to_step"`
		RelUpdate  *float64 `json:"rel_update"`
		TopTensors []struct {
			Name string
		} `json:"top_tensors"`
	}
	DriftOnset *struct {
		FromStep int `json:"from_step"`
		ToStep   int `json:"to_step"`
	} `json:"drift_onset"`
	TrainingLog struct {
		FirstNonfiniteLossStep *int `json:"first_nonfinite_loss_step"`
		Events                 []struct {
			Step          int
			Kind, Message string
		}
	} `json:"training_log"`
	Recommendation struct {
		RollbackTo *struct {
			Path string
			Step int
		} `json:"rollback_to"`
		Advice []struct{ Kind string }
	}
}

func writeRun(t *testing.T, o synth.RunOptions) (string, synth.RunTruth) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	if _, err := synth.WriteRun(dir, o); err != nil {
		t.Fatal(err)
	}
	truth, err := o.Truth()
	if err != nil {
		t.Fatal(err)
	}
	return dir, truth
}

func TestBisectGeneratedRun(t *testing.T) {
	run, truth := writeRun(t, synth.RunOptions{Seed: 11, Checkpoints: 12, JumpStep: 550, NaNStep: 950})
	r := cliRun(t, "bisect", "--json", run)
	r.wantCode(t, 1)
	docs := cliJSON(t, r.stdout)
	if len(docs) != 1 {
		t.Fatalf("%d JSON documents", len(docs))
	}
	requireKeys(t, "bisect", docs[0], "checkpoints", "scanned", "last_healthy", "first_unhealthy", "culprits", "drift", "drift_onset", "training_log")
	requireKeys(t, "checkpoint", docs[0]["checkpoints"].([]any)[0], "path", "step", "verdict")
	requireKeys(t, "drift", docs[0]["drift"].([]any)[0], "from_step", "to_step", "rel_update", "top_tensors")
	requireKeys(t, "training_log", docs[0]["training_log"], "first_nonfinite_loss_step", "events")
	requireKeys(t, "event", docs[0]["training_log"].(map[string]any)["events"].([]any)[0], "step", "kind", "message")

	var d bisectDoc
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatal(err)
	}
	n := len(truth.Steps)
	if d.FirstUnhealthy == nil || d.FirstUnhealthy.Step != truth.FirstUnhealthy || d.LastHealthy == nil || d.LastHealthy.Step != truth.LastHealthy {
		t.Fatalf("verdict %+v / %+v, want first unhealthy %d, last healthy %d", d.FirstUnhealthy, d.LastHealthy, truth.FirstUnhealthy, truth.LastHealthy)
	}
	if budget := bits.Len(uint(n-1)) + 2; len(d.Scanned) > budget {
		t.Errorf("%d scans, budget ⌈log2 %d⌉+2 = %d", len(d.Scanned), n, budget)
	}
	scanned := map[string]bool{}
	for _, s := range d.Scanned {
		scanned[s.Path] = true
	}
	if !scanned[d.FirstUnhealthy.Path] || !scanned[d.LastHealthy.Path] {
		t.Errorf("reported checkpoints not both scanned: %v", d.Scanned)
	}
	for _, c := range d.Checkpoints {
		if c.Verdict != "healthy" && c.Verdict != "unhealthy" && c.Verdict != "not_scanned" {
			t.Errorf("verdict %q", c.Verdict)
		}
		if (c.Verdict == "not_scanned") == scanned[c.Path] {
			t.Errorf("%s: verdict %s, scanned %v", c.Path, c.Verdict, scanned[c.Path])
		}
	}
	if d.DriftOnset == nil || d.DriftOnset.FromStep != truth.DriftFrom || d.DriftOnset.ToStep != truth.DriftTo {
		t.Errorf("drift onset %+v, want %d → %d", d.DriftOnset, truth.DriftFrom, truth.DriftTo)
	}
	jump := 0
	for _, e := range d.TrainingLog.Events {
		if e.Kind == "lr_jump" {
			jump = e.Step
		}
	}
	if jump <= truth.JumpStep || jump > truth.JumpStep+10 {
		t.Errorf("lr jump at %d, want just after %d", jump, truth.JumpStep)
	}
	if p := d.TrainingLog.FirstNonfiniteLossStep; p == nil || *p != truth.FirstNonFiniteLossStep {
		t.Errorf("first non-finite loss step %v, want %d", p, truth.FirstNonFiniteLossStep)
	}
	if rb := d.Recommendation.RollbackTo; rb == nil || rb.Step != truth.DriftFrom {
		t.Errorf("rollback %+v, want checkpoint-%d", rb, truth.DriftFrom)
	}
	if len(d.Culprits) == 0 || len(d.Drift) == 0 || len(d.Drift[0].TopTensors) == 0 {
		t.Errorf("culprits %d, drift %d", len(d.Culprits), len(d.Drift))
	}

	// The text view says the same in words.
	r = cliRun(t, "bisect", "--color=never", run)
	r.wantCode(t, 1)
	for _, want := range []string{
		fmt.Sprintf("UNHEALTHY: first unhealthy checkpoint-%d (step %d), last healthy checkpoint-%d (step %d)", truth.FirstUnhealthy, truth.FirstUnhealthy, truth.LastHealthy, truth.LastHealthy),
		fmt.Sprintf("DRIFT ONSET between checkpoint-%d and checkpoint-%d", truth.DriftFrom, truth.DriftTo),
		fmt.Sprintf("RECOMMENDATION: roll back to checkpoint-%d", truth.DriftFrom),
		"lr_jump", "learning rate jumps from 3e-05 to 0.0003",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.stderr != "" {
		t.Errorf("stderr (not a terminal: no progress): %s", r.stderr)
	}
}

func TestBisectHealthyRunAndPaths(t *testing.T) {
	run, truth := writeRun(t, synth.RunOptions{Seed: 12, Checkpoints: 6, JumpStep: 350, NaNStep: -1})
	r := cliRun(t, "bisect", "--json", "--fast", run)
	r.wantCode(t, 0)
	var d bisectDoc
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatal(err)
	}
	if d.FirstUnhealthy != nil || d.LastHealthy == nil || d.LastHealthy.Step != truth.Steps[len(truth.Steps)-1] || len(d.Scanned) != 1 {
		t.Errorf("healthy run: first unhealthy %v, last healthy %v, %d scans", d.FirstUnhealthy, d.LastHealthy, len(d.Scanned))
	}
	// Explicit checkpoint paths, in any order: sorted by step.
	var paths []string
	for i := len(truth.Dirs) - 1; i >= 0; i-- {
		paths = append(paths, filepath.Join(run, truth.Dirs[i]))
	}
	r = cliRun(t, append([]string{"bisect", "--json", "--no-drift"}, paths...)...)
	r.wantCode(t, 0)
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatal(err)
	}
	if d.Checkpoints[0].Step != truth.Steps[0] || len(d.Drift) != 0 {
		t.Errorf("first %d, drift %d", d.Checkpoints[0].Step, len(d.Drift))
	}
}

func TestBisectUsageAndTrouble(t *testing.T) {
	cliRun(t, "bisect").wantCode(t, 2)
	empty := t.TempDir()
	r := cliRun(t, "bisect", empty)
	r.wantCode(t, 2)
	if !strings.Contains(r.stderr, "no checkpoint series found") || !strings.Contains(r.stderr, "ckpt: hint:") {
		t.Errorf("stderr %s", r.stderr)
	}
	r = cliRun(t, "bisect", filepath.Join(empty, "missing"))
	r.wantCode(t, 2)
	run, _ := writeRun(t, synth.RunOptions{Seed: 13, Checkpoints: 4, JumpStep: 250, NaNStep: -1})
	cliRun(t, "bisect", "--until", "sometimes", run).wantCode(t, 2)
	// Every checkpoint incomplete: nothing to bisect.
	for _, d := range []string{"checkpoint-100", "checkpoint-200", "checkpoint-300", "checkpoint-400"} {
		if err := os.Remove(filepath.Join(run, d, "model.safetensors")); err != nil {
			t.Fatal(err)
		}
	}
	r = cliRun(t, "bisect", run)
	r.wantCode(t, 2)
	if !strings.Contains(r.stderr, "none of the 4 checkpoints is complete") {
		t.Errorf("stderr %s", r.stderr)
	}
}

func TestBisectRealdataSeries(t *testing.T) {
	rd := cliRealdata(t)
	ml := filepath.Join(rd, "kako-jun__diffai/@adffa46380/to-migrate/deprecated/tests-old/fixtures/ml_models")
	r := cliRun(t, "bisect", filepath.Join(ml, "checkpoint_epoch_0.safetensors"), filepath.Join(ml, "checkpoint_epoch_50.safetensors"), filepath.Join(ml, "checkpoint_epoch_10.safetensors"))
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "HEALTHY: every checkpoint is healthy") {
		t.Errorf("%s", r.stdout)
	}
	tl := filepath.Join(rd, "JunSuzukiJapan__tl")
	r = cliRun(t, "bisect", "--until", "nonfinite", filepath.Join(tl, "@962514214a/model_2digit.safetensors"), filepath.Join(tl, "@b77a867ed0/model_2digit.safetensors"))
	r.wantCode(t, 1)
	if !strings.Contains(r.stdout, "first unhealthy @b77a867ed0/model_2digit.safetensors") {
		t.Errorf("%s", r.stdout)
	}
}

// TestBisectHostileCorpus bisects a healthy checkpoint followed by each
// malformed one of the hostile corpus: no panic, no hang, exit 1 or 2.
func TestBisectHostileCorpus(t *testing.T) {
	good := cliTiny(t, 0, "")
	for _, c := range hostileCorpus(t) {
		if c.Name == "million-tensors" {
			continue
		}
		args := []string{"bisect", "--json", good, c.Path}
		r := cliRunBounded(t, 20*time.Second, c.Name, args...)
		checkHostile(t, c, c.Bisect, args, r)
		switch r.code {
		case 0:
			// Only a checkpoint without any weights may be skipped as incomplete.
			var d bisectDoc
			if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || len(d.Checkpoints) != 2 || d.Checkpoints[1].Verdict != "not_scanned" ||
				!strings.Contains(r.stdout, `"incomplete":"no weights"`) {
				t.Errorf("%s: exit 0\n%s", c.Name, r.stdout)
			}
			if des, _ := os.ReadDir(c.Path); len(des) > 0 {
				for _, de := range des {
					if strings.Contains(de.Name(), ".safetensors") {
						t.Errorf("%s: skipped as without weights, but holds %s", c.Name, de.Name())
					}
				}
			}
		case 1:
			var d bisectDoc
			if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || d.FirstUnhealthy == nil || d.FirstUnhealthy.Path != c.Path {
				t.Errorf("%s: %v %s", c.Name, err, r.stdout)
			}
		}
	}
}
