package diff

import (
	"fmt"
	"github.com/ckpt-tool/ckpt/internal/synth"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
)

func readState(t *testing.T, path string) *formats.TrainerState {
	t.Helper()
	st, err := formats.ReadTrainerState(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func eventSteps(tl *TrainingLog, kind string) []int {
	var out []int
	for _, e := range tl.Events {
		if e.Kind == kind {
			out = append(out, e.Step)
		}
	}
	return out
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAnalyzeLogRealdata(t *testing.T) {
	rd := moduleRealdata(t)
	t.Run("5hiri NaN and Infinity with a loss jump", func(t *testing.T) {
		tl := AnalyzeLog(readState(t, filepath.Join(rd, "5hiri__Fine-Tuning-LLM-Test/outputs/checkpoint-60/trainer_state.json")), []int{60})
		if got := eventSteps(tl, EventNonFiniteGradNorm); !sameInts(got, []int{5, 18}) {
			t.Errorf("non-finite grad_norm at %v, want [5 18]", got)
		}
		if tl.FirstNonFiniteLossStep != nil || optStep(tl.FirstNonFiniteGradNormStep) != 5 {
			t.Errorf("first non-finite loss %v, grad_norm %v", tl.FirstNonFiniteLossStep, tl.FirstNonFiniteGradNormStep)
		}
		if got := eventSteps(tl, EventLossSpike); len(got) == 0 || got[0] != 18 {
			t.Errorf("loss spikes at %v, want the first at 18", got)
		}
		for _, e := range tl.Events {
			if e.Kind == EventNonFiniteGradNorm && (e.CheckpointAfter == nil || *e.CheckpointAfter != 60 || e.CheckpointBefore != nil) {
				t.Errorf("event at %d placed %v %v", e.Step, e.CheckpointBefore, e.CheckpointAfter)
			}
		}
	})
	t.Run("one grad_norm spike each", func(t *testing.T) {
		for file, step := range map[string]int{
			"samyakshrestha__grpo-verified-reasoner/outputs/checkpoint-1134/trainer_state.json": 205,
			"10844110__t5-summarization-demo/trainer_state.json":                                190000,
		} {
			tl := AnalyzeLog(readState(t, filepath.Join(rd, file)), nil)
			if got := eventSteps(tl, EventGradNormSpike); !sameInts(got, []int{step}) {
				t.Errorf("%s: grad_norm spikes at %v, want [%d]", file, got, step)
			}
		}
	})
	t.Run("no learning-rate jump in any real schedule", func(t *testing.T) {
		err := filepath.WalkDir(rd, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.Name() != "trainer_state.json" {
				return err
			}
			tl := AnalyzeLog(readState(t, p), nil)
			if j := eventSteps(tl, EventLRJump); len(j) > 0 {
				t.Errorf("%s: lr jumps at %v", p, j)
			}
			if r := eventSteps(tl, EventGradNormRise); len(r) > 0 {
				t.Errorf("%s: grad_norm rise at %v", p, r)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// stateText renders a trainer_state.json with one entry per step.
func stateText(steps []int, lr, loss, gn func(s int) float64) []byte {
	var b strings.Builder
	b.WriteString(`{"global_step": 0, "log_history": [`)
	for i, s := range steps {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"step": %d, "learning_rate": %s, "loss": %s, "grad_norm": %s}`, s, synth.PyFloat(lr(s)), synth.PyFloat(loss(s)), synth.PyFloat(gn(s)))
	}
	b.WriteString("]}")
	return []byte(b.String())
}

func steps(from, to, by int) []int {
	var out []int
	for s := from; s <= to; s += by {
		out = append(out, s)
	}
	return out
}

func TestAnalyzeLogRules(t *testing.T) {
	flat := func(v float64) func(int) float64 { return func(int) float64 { return v } }
	cases := []struct {
		name         string
		steps        []int
		lr, loss, gn func(int) float64
		want         map[string][]int
	}{
		{"linear warmup from zero, then decay", steps(0, 500, 10),
			func(s int) float64 {
				if s <= 100 {
					return 3e-4 * float64(s) / 100
				}
				return 3e-4 * (1 - float64(s-100)/500)
			}, flat(1), flat(1), map[string][]int{}},
		{"a 10x jump after constant", steps(10, 400, 10),
			func(s int) float64 {
				if s > 205 {
					return 3e-4
				}
				return 3e-5
			}, flat(1), flat(1), map[string][]int{EventLRJump: {210}}},
		{"warmup then a restart jump", steps(10, 600, 10),
			func(s int) float64 {
				switch {
				case s <= 100:
					return 1e-4 * float64(s) / 100
				case s <= 300:
					return 1e-4 * (1 - float64(s-100)/250)
				}
				return 1e-4
			}, flat(1), flat(1), map[string][]int{EventLRJump: {310}}},
		{"a run of NaN losses is one event", steps(10, 200, 10), flat(1e-5),
			func(s int) float64 {
				if s >= 100 && s <= 130 {
					return math.NaN()
				}
				return 1
			}, flat(1), map[string][]int{EventNonFiniteLoss: {100}}},
		{"a grad_norm spike and a sustained rise", steps(10, 600, 10), flat(1e-5), flat(1),
			func(s int) float64 {
				switch {
				case s == 150:
					return 40
				case s > 300: // growth too steady to be a spike: 4x per 100 steps
					return math.Exp(float64(s-300) / 70)
				}
				return 1 + 0.1*math.Sin(float64(s))
			}, map[string][]int{EventGradNormSpike: {150}, EventGradNormRise: {470}}},
		{"a loss spike, and rounding noise near zero is not one", steps(10, 400, 10), flat(1e-5),
			func(s int) float64 {
				switch {
				case s == 300:
					return 2.5
				case s > 100:
					return 0.0001 * float64(s%3)
				}
				return 1 - float64(s)/110
			}, flat(1), map[string][]int{EventLossSpike: {300}}},
	}
	for _, c := range cases {
		st, err := formats.ParseTrainerState("x", stateText(c.steps, c.lr, c.loss, c.gn))
		if err != nil {
			t.Fatal(err)
		}
		tl := AnalyzeLog(st, []int{100, 200, 300})
		for _, kind := range []string{EventLRJump, EventNonFiniteLoss, EventNonFiniteGradNorm, EventGradNormSpike, EventGradNormRise, EventLossSpike} {
			if got := eventSteps(tl, kind); !sameInts(got, c.want[kind]) {
				t.Errorf("%s: %s at %v, want %v", c.name, kind, got, c.want[kind])
			}
		}
	}
}

func TestNonFiniteRunMessages(t *testing.T) {
	st, err := formats.ParseTrainerState("x", []byte(`{"log_history": [
	  {"step": 1, "loss": 1, "learning_rate": 1e-4},
	  {"step": 2, "loss": NaN, "learning_rate": 1e-4},
	  {"step": 3, "loss": 1, "learning_rate": 2e-4},
	  {"step": 4, "loss": Infinity, "learning_rate": 3e-4},
	  {"step": 5, "loss": NaN, "learning_rate": 4e-4}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tl := AnalyzeLog(st, []int{3})
	if got := eventSteps(tl, EventNonFiniteLoss); !sameInts(got, []int{2, 4}) {
		t.Fatalf("events at %v", got)
	}
	first, second := tl.Events[0], tl.Events[1]
	if !strings.Contains(first.Message, "skipped") || !strings.Contains(first.Message, "before the first checkpoint") {
		t.Errorf("an isolated NaN with the rate held: %q", first.Message)
	}
	if strings.Contains(second.Message, "skipped") || !strings.Contains(second.Message, "after the newest checkpoint") || first.Value != nil {
		t.Errorf("a run to the end: %q", second.Message)
	}
	if optStep(tl.FirstNonFiniteLossStep) != 2 {
		t.Errorf("first non-finite loss %v", tl.FirstNonFiniteLossStep)
	}
}
