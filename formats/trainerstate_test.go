package formats

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt-tool/ckpt/internal/testenv"
)

func TestParseTrainerStateNonFiniteTokens(t *testing.T) {
	text := `{"global_step": 30, "max_steps": 100, "logging_steps": 10, "save_steps": 10, "epoch": 0.5,
	"best_model_checkpoint": "NaN Infinity -Infinity \"NaN\"",
	"log_history": [
	  {"epoch": 0.1, "grad_norm": 1.5, "learning_rate": 1e-05, "loss": 2.25, "step": 10},
	  {"epoch": 0.2, "grad_norm": NaN, "learning_rate": 2e-05, "loss": Infinity, "step": 20},
	  {"epoch": 0.3,"grad_norm":-Infinity,"learning_rate":3e-05,"loss":NaN,"step":30},
	  {"epoch": 0.3, "eval_loss": 1.0, "step": 30, "note": "loss NaN"}
	]}`
	st, err := ParseTrainerState("ts.json", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if st.GlobalStep != 30 || st.MaxSteps != 100 || st.LoggingSteps != 10 || st.SaveSteps != 10 || st.Epoch != 0.5 {
		t.Fatalf("counters: %+v", st)
	}
	if len(st.LogHistory) != 4 {
		t.Fatalf("got %d entries", len(st.LogHistory))
	}
	e := st.LogHistory
	if *e[0].Loss != 2.25 || *e[0].GradNorm != 1.5 || *e[0].LearningRate != 1e-5 {
		t.Errorf("entry 0: %+v", e[0])
	}
	if !math.IsNaN(*e[1].GradNorm) || !math.IsInf(*e[1].Loss, 1) {
		t.Errorf("entry 1: grad_norm %v loss %v", *e[1].GradNorm, *e[1].Loss)
	}
	if !math.IsInf(*e[2].GradNorm, -1) || !math.IsNaN(*e[2].Loss) {
		t.Errorf("entry 2: grad_norm %v loss %v", *e[2].GradNorm, *e[2].Loss)
	}
	if e[3].Loss != nil || e[3].EvalLoss == nil || *e[3].EvalLoss != 1 || e[3].Step != 30 {
		t.Errorf("entry 3 (eval): %+v", e[3])
	}
	if _, ok := e[3].Values["note"]; ok {
		t.Errorf("a string field became a number")
	}
}

func TestQuoteNonFiniteLeavesStringsAlone(t *testing.T) {
	in := `{"a": "NaN, Infinity", "b": "say \"NaN\" ok", "c": NaN, "d": [Infinity,-Infinity]}`
	out, err := quoteNonFinite([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a": "NaN, Infinity", "b": "say \"NaN\" ok", "c": "NaN", "d": ["Infinity","-Infinity"]}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	plain := []byte(`{"x": 1}`)
	if got, _ := quoteNonFinite(plain); &got[0] != &plain[0] {
		t.Errorf("text without tokens was copied")
	}
}

func TestParseTrainerStateErrors(t *testing.T) {
	cases := map[string]string{
		"not json":        `{"log_history": [`,
		"entry not obj":   `{"log_history": [3]}`,
		"no step":         `{"log_history": [{"loss": 1}]}`,
		"fractional step": `{"log_history": [{"loss": 1, "step": 1.5}]}`,
		"bad global_step": `{"global_step": "ten", "log_history": []}`,
		"unterminated":    `{"log_history": "NaN`,
		"top is array":    `[NaN]`,
	}
	for name, text := range cases {
		_, err := ParseTrainerState("x.json", []byte(text))
		if !errors.Is(err, ErrTrainerState) {
			t.Errorf("%s: got %v, want ErrTrainerState", name, err)
		}
		var fe *Error
		if errors.As(err, &fe) && fe.File != "x.json" {
			t.Errorf("%s: error names %q", name, fe.File)
		}
	}
}

func TestParseTrainerStateSortsBySteps(t *testing.T) {
	st, err := ParseTrainerState("x", []byte(`{"log_history": [{"step": 20, "loss": 2}, {"step": 10, "loss": 1}, {"step": 20.0, "loss": 3}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, e := range st.LogHistory {
		got = append(got, *e.Loss)
	}
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("order %v", got)
	}
}

func TestReadTrainerStateMissing(t *testing.T) {
	_, err := ReadTrainerState(filepath.Join(t.TempDir(), "trainer_state.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

// trainerStateRealdataDir is the shared corpus of real files (the test skips when absent).
func trainerStateRealdataDir(t *testing.T) string { return testenv.Realdata(t) }

func TestReadTrainerStateRealdata(t *testing.T) {
	rd := trainerStateRealdataDir(t)
	t.Run("5hiri NaN and Infinity", func(t *testing.T) {
		st, err := ReadTrainerState(filepath.Join(rd, "5hiri__Fine-Tuning-LLM-Test/outputs/checkpoint-60/trainer_state.json"))
		if err != nil {
			t.Fatal(err)
		}
		if st.GlobalStep != 60 || len(st.LogHistory) < 60 {
			t.Fatalf("global_step %d, %d entries", st.GlobalStep, len(st.LogHistory))
		}
		var nan, inf []int
		for _, e := range st.LogHistory {
			if e.GradNorm != nil && math.IsNaN(*e.GradNorm) {
				nan = append(nan, e.Step)
			}
			if e.GradNorm != nil && math.IsInf(*e.GradNorm, 1) {
				inf = append(inf, e.Step)
			}
		}
		if len(nan) != 1 || nan[0] != 5 || len(inf) != 1 || inf[0] != 18 {
			t.Fatalf("NaN grad_norm at %v, Infinity at %v", nan, inf)
		}
	})
	// Every trainer_state.json in realdata parses, with a log entry per "step" key.
	err := filepath.WalkDir(rd, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "trainer_state.json" {
			return err
		}
		st, err := ReadTrainerState(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		if len(st.LogHistory) == 0 || st.GlobalStep == 0 {
			t.Errorf("%s: %d entries, global_step %d", p, len(st.LogHistory), st.GlobalStep)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
