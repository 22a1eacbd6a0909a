package synth_test

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/internal/synth"
)

// sumSquares over the given tensors of a checkpoint, and of the difference
// with another checkpoint (nil: none), in float64.
func sumSquares(t *testing.T, c, prev *formats.Checkpoint, names []string) (norm2, diff2 float64, nonFinite, n int) {
	for _, name := range names {
		v := values(t, c, name)
		var p []float64
		if prev != nil {
			p = values(t, prev, name)
		}
		for i, x := range v {
			n++
			if math.IsNaN(x) || math.IsInf(x, 0) {
				nonFinite++
				continue
			}
			if p != nil {
				norm2 += p[i] * p[i]
				diff2 += (x - p[i]) * (x - p[i])
			} else {
				norm2 += x * x
			}
		}
	}
	return
}

func matrices(c *formats.Checkpoint) []string {
	var out []string
	for _, ten := range c.Tensors {
		if strings.HasSuffix(ten.Name, "_proj.weight") || strings.HasSuffix(ten.Name, "embed_tokens.weight") {
			out = append(out, ten.Name)
		}
	}
	return out
}

func TestRunMatchesItsGroundTruth(t *testing.T) {
	for _, dt := range []formats.DType{formats.F32, formats.BF16} {
		o := synth.RunOptions{Arch: synth.Tiny, DType: dt, Seed: 11}
		truth, err := o.Truth()
		if err != nil {
			t.Fatal(err)
		}
		run := t.TempDir()
		steps, err := synth.WriteRun(run, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(steps) < 12 || len(steps) != len(truth.Steps) {
			t.Fatalf("%d checkpoints (%v), truth has %d", len(steps), steps, len(truth.Steps))
		}
		if !(truth.DriftFrom <= truth.JumpStep && truth.JumpStep < truth.DriftTo && truth.DriftTo <= truth.LastHealthy && truth.LastHealthy < truth.FirstUnhealthy) {
			t.Fatalf("default scenario out of order: %+v", truth)
		}
		var prev, first *formats.Checkpoint
		var preJump, jump float64
		for k, step := range steps {
			dir := filepath.Join(run, truth.Dirs[k])
			c := openClean(t, dir)
			names := matrices(c)
			_, _, bad, n := sumSquares(t, c, nil, names)
			switch {
			case step <= truth.LastHealthy && bad != 0:
				t.Errorf("%s: %d non-finite values in a healthy checkpoint", dir, bad)
			case step >= truth.FirstUnhealthy && bad != n:
				t.Errorf("%s: %d of %d values non-finite, want all", dir, bad, n)
			}
			if k == 0 {
				first = c
			}
			if k > 0 && step <= truth.LastHealthy {
				norm2, diff2, _, _ := sumSquares(t, c, prev, names)
				rel := math.Sqrt(diff2 / norm2)
				want := truth.RelUpdate[k]
				lo, hi := 0.9, 1.1
				if dt == formats.BF16 && step <= truth.JumpStep {
					lo, hi = 0.3, 4 // rounding to 8 bits dominates updates of 1e-3
				}
				if rel < lo*want || rel > hi*want {
					t.Errorf("%s %s: relative update %.3g, truth says %.3g", dt, dir, rel, want)
				}
				if step <= truth.JumpStep {
					preJump = max(preJump, rel)
				} else if step == truth.DriftTo {
					jump = rel
				}
				// Weight norms grow by the truth's gain.
				n0, _, _, _ := sumSquares(t, first, nil, names)
				nk, _, _, _ := sumSquares(t, c, nil, names)
				if g := math.Sqrt(nk / n0); math.Abs(g/truth.Gain[k]-1) > 0.1 {
					t.Errorf("%s %s: norm grew %.3fx, truth says %.3fx", dt, dir, g, truth.Gain[k])
				}
			}
			prev = c
		}
		if jump < 20*preJump {
			t.Errorf("%s: the update after the jump (%.3g) is not far larger than before it (%.3g)", dt, jump, preJump)
		}
	}
}

func TestRunTrainingLog(t *testing.T) {
	for _, filter := range []bool{false, true} {
		o := synth.RunOptions{Seed: 2, NaNFilter: filter, Checkpoints: 12, JumpStep: 450, NaNStep: 1005}
		truth, err := o.Truth()
		if err != nil {
			t.Fatal(err)
		}
		run := t.TempDir()
		if _, err := synth.WriteRun(run, o); err != nil {
			t.Fatal(err)
		}
		if truth.LastHealthy != 1000 || truth.FirstUnhealthy != 1100 || truth.DriftFrom != 400 || truth.DriftTo != 500 {
			t.Fatalf("truth %+v", truth)
		}
		wantLoss := 1010
		if filter {
			wantLoss = 0
		}
		if truth.FirstNonFiniteGradNormStep != 1010 || truth.FirstNonFiniteLossStep != wantLoss {
			t.Fatalf("truth: first non-finite grad_norm %d, loss %d", truth.FirstNonFiniteGradNormStep, truth.FirstNonFiniteLossStep)
		}
		for k, step := range truth.Steps {
			p := filepath.Join(run, truth.Dirs[k], "trainer_state.json")
			st, err := formats.ReadTrainerState(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.GlobalStep != step || len(st.LogHistory) != step/10 || st.LogHistory[len(st.LogHistory)-1].Step != step {
				t.Fatalf("%s: global_step %d, %d entries", p, st.GlobalStep, len(st.LogHistory))
			}
			if k != len(truth.Steps)-1 {
				continue
			}
			firstLoss, firstGrad := 0, 0
			for _, e := range st.LogHistory {
				if e.Loss == nil || e.GradNorm == nil || e.LearningRate == nil {
					t.Fatalf("step %d: a field is missing", e.Step)
				}
				if firstLoss == 0 && (math.IsNaN(*e.Loss) || math.IsInf(*e.Loss, 0)) {
					firstLoss = e.Step
				}
				if firstGrad == 0 && (math.IsNaN(*e.GradNorm) || math.IsInf(*e.GradNorm, 0)) {
					firstGrad = e.Step
				}
				wantLR := 3e-5
				if e.Step > truth.JumpStep {
					wantLR = 3e-4
				}
				if *e.LearningRate != wantLR {
					t.Errorf("step %d: learning_rate %g, want %g", e.Step, *e.LearningRate, wantLR)
				}
				if e.Step < truth.JumpStep && (*e.GradNorm < 0.5 || *e.GradNorm > 1.5) {
					t.Errorf("step %d: healthy grad_norm %g", e.Step, *e.GradNorm)
				}
			}
			if firstLoss != truth.FirstNonFiniteLossStep || firstGrad != truth.FirstNonFiniteGradNormStep {
				t.Errorf("log: first non-finite loss %d grad_norm %d; truth %d and %d", firstLoss, firstGrad, truth.FirstNonFiniteLossStep, truth.FirstNonFiniteGradNormStep)
			}
			text := readFile(t, p)
			if !bytes.Contains(text, []byte(`"grad_norm": Infinity,`)) || !bytes.Contains(text, []byte(`"grad_norm": NaN,`)) {
				t.Error("trainer_state.json lacks the bare Infinity and NaN tokens Python writes")
			}
			if bytes.Contains(text, []byte(`"loss": NaN`)) == filter {
				t.Errorf("NaNFilter=%v, but a NaN loss is logged: %v", filter, !filter)
			}
		}
	}
}

func TestRunShardedAndOptions(t *testing.T) {
	run := t.TempDir()
	o := synth.RunOptions{Seed: 1, Shards: 2, Checkpoints: 12, NaNStep: -1}
	steps, err := synth.WriteRun(run, o)
	if err != nil {
		t.Fatal(err)
	}
	truth, _ := o.Truth()
	if truth.FirstUnhealthy != 0 || truth.LastHealthy != steps[len(steps)-1] || truth.FirstNonFiniteGradNormStep != 0 {
		t.Errorf("a run without NaN: truth %+v", truth)
	}
	for _, d := range truth.Dirs {
		c := openClean(t, filepath.Join(run, d))
		if c.Layout != formats.LayoutSharded || len(c.Files) != 2 {
			t.Errorf("%s: layout %s, %d files", d, c.Layout, len(c.Files))
		}
	}
	for name, bad := range map[string]synth.RunOptions{
		"jump before the first checkpoint": {JumpStep: 50},
		"jump after the last":              {JumpStep: 5000},
		"NaN before the jump":              {JumpStep: 650, NaNStep: 600},
		"one checkpoint":                   {Checkpoints: 1},
		"NaN in a tensor the model lacks":  {NaNTensors: []string{"model.layers.9.mlp.up_proj.weight"}},
	} {
		if _, err := synth.WriteRun(t.TempDir(), bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPyFloat(t *testing.T) {
	// Python: repr() of each float, as json.dumps writes it.
	for f, want := range map[float64]string{
		3e-05: "3e-05", 0.0003: "0.0003", 1.0: "1.0", 2.5: "2.5", 1e16: "1e+16", 1.3652374253420544e+16: "1.3652374253420544e+16",
		123456789012345.0: "123456789012345.0", 0.0001: "0.0001", -0.00001: "-1e-05",
		math.NaN(): "NaN", math.Inf(1): "Infinity", math.Inf(-1): "-Infinity", 0: "0.0",
	} {
		if got := synth.PyFloat(f); got != want {
			t.Errorf("PyFloat(%v) = %s, want %s", f, got, want)
		}
	}
}

// The first checkpoint of a run is the plain checkpoint of the same seed: the
// run's sequential multi-checkpoint writer and WriteCheckpoint's parallel one
// must produce the same bytes.
func TestRunStartsFromTheSeedsCheckpoint(t *testing.T) {
	for _, dt := range []formats.DType{formats.BF16, formats.F8_E4M3} {
		run := t.TempDir()
		if _, err := synth.WriteRun(run, synth.RunOptions{Seed: 21, DType: dt, Shards: 2}); err != nil {
			t.Fatal(err)
		}
		plain := writeTiny(t, synth.Options{Seed: 21, DType: dt, Shards: 2})
		for _, name := range []string{synth.ShardName(1, 2), synth.ShardName(2, 2), synth.IndexName, "config.json"} {
			if !bytes.Equal(readFile(t, filepath.Join(run, "checkpoint-100", name)), readFile(t, filepath.Join(plain, name))) {
				t.Errorf("%s: checkpoint-100/%s differs from WriteCheckpoint's", dt, name)
			}
		}
	}
}
