package optim_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt-tool/ckpt/formats"
	"github.com/ckpt-tool/ckpt/inspect"
	"github.com/ckpt-tool/ckpt/internal/testenv"
	"github.com/ckpt-tool/ckpt/optim"
)

// torchParam is what torch says about one optimizer parameter
// (testdata/trainer_fixtures.py).
type torchParam struct {
	ID          int64             `json:"id"`
	Name        string            `json:"name"`
	Shape       []uint64          `json:"shape"`
	NonFinite   map[string]uint64 `json:"nonfinite"`
	Negative    map[string]uint64 `json:"negative"`
	Step        float64           `json:"step"`
	UpdateRatio *float64          `json:"update_ratio"`
}

type torchCheckpoint struct {
	Params []torchParam `json:"params"`
	Groups []struct {
		LR          float64   `json:"lr"`
		Betas       []float64 `json:"betas"`
		Eps         float64   `json:"eps"`
		WeightDecay float64   `json:"weight_decay"`
		Params      []int64   `json:"params"`
	} `json:"groups"`
}

var (
	fixDir  string
	fixWant map[string]torchCheckpoint
)

// fixtures writes the Trainer-like checkpoints once per test binary.
func fixtures(t *testing.T) (string, map[string]torchCheckpoint) {
	t.Helper()
	if fixDir == "" {
		dir, err := os.MkdirTemp("", "ckpt-optim-")
		if err != nil {
			t.Fatal(err)
		}
		ok := false
		defer func() { // also when a missing torch skips the test
			if !ok {
				os.RemoveAll(dir)
			}
		}()
		testenv.WriteTrainerCheckpoints(t, dir)
		b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
		if err == nil {
			err = json.Unmarshal(b, &fixWant)
		}
		if err != nil {
			t.Fatal(err)
		}
		fixDir, ok = dir, true
	}
	return fixDir, fixWant
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

// analyze opens, scans and checks one checkpoint.
func analyze(t *testing.T, path string) (*optim.State, *inspect.Result, []inspect.Finding) {
	t.Helper()
	c, err := formats.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := inspect.Scan(context.Background(), c, inspect.Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := optim.Read(c)
	if err != nil || s == nil {
		t.Fatalf("optim.Read(%s) = %v, %v", path, s, err)
	}
	fs, err := s.Check(context.Background(), r, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s, r, fs
}

func relClose(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b)) || a == b
}

// TestTrainerCheckpointsMatchTorch: every parameter of every checkpoint is
// named by the Trainer's order as torch's named_parameters() names it; the
// groups, steps, nonfinite counts and predicted update ratios equal torch's
// (ratios within 1e-5 relative).
func TestTrainerCheckpointsMatchTorch(t *testing.T) {
	dir, want := fixtures(t)
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			s, _, _ := analyze(t, filepath.Join(dir, name))
			if s.Algorithm != "adam" {
				t.Errorf("algorithm %q, want adam", s.Algorithm)
			}
			if len(s.Groups) != len(w.Groups) {
				t.Fatalf("%d groups, want %d", len(s.Groups), len(w.Groups))
			}
			for i, g := range w.Groups {
				h := s.Groups[i]
				if *h.LR != g.LR || *h.Eps != g.Eps || *h.WeightDecay != g.WeightDecay || !slices.Equal(h.Betas, g.Betas) || !slices.Equal(h.Params, g.Params) {
					t.Errorf("group %d = %+v, want %+v", i, h, g)
				}
			}
			if len(s.Params) != len(w.Params) {
				t.Fatalf("%d params, want %d", len(s.Params), len(w.Params))
			}
			for i, wp := range w.Params {
				p := s.Params[i]
				if p.ID != wp.ID || p.Name == nil || *p.Name != wp.Name || p.NameSource == nil || *p.NameSource != optim.SourceOrder {
					t.Errorf("param %d: id %d name %v source %v, want %d %q by order (%s)", i, p.ID, deref(p.Name), deref(p.NameSource), wp.ID, wp.Name, s.Naming)
					continue
				}
				if p.Step == nil || *p.Step != wp.Step {
					t.Errorf("%s: step %v, want %g", wp.Name, p.Step, wp.Step)
				}
				var nf uint64
				for _, n := range wp.NonFinite {
					nf += n
				}
				if p.NonFinite == nil || *p.NonFinite != nf {
					t.Errorf("%s: %v nonfinite, torch counts %d", wp.Name, p.NonFinite, nf)
				}
				if name == "poison-shape" && wp.Name == "model.layers.0.self_attn.q_proj.weight" {
					if p.UpdateRatio != nil {
						t.Errorf("%s: an update ratio for a state of the wrong shape", wp.Name)
					}
					continue
				}
				switch {
				case wp.UpdateRatio == nil && p.UpdateRatio != nil:
					t.Errorf("%s: update ratio %g, torch has none", wp.Name, *p.UpdateRatio)
				case wp.UpdateRatio != nil && p.UpdateRatio == nil:
					t.Errorf("%s: no update ratio, torch says %g", wp.Name, *wp.UpdateRatio)
				case wp.UpdateRatio != nil && !relClose(*p.UpdateRatio, *wp.UpdateRatio, 1e-5):
					t.Errorf("%s: update ratio %.9g, torch says %.9g", wp.Name, *p.UpdateRatio, *wp.UpdateRatio)
				}
			}
			if s.GlobalStep == nil || s.Scheduler == nil || s.Scheduler.LastEpoch == nil || len(s.Scheduler.LastLR) != 2 {
				t.Errorf("global_step %v, scheduler %+v: want both read", s.GlobalStep, s.Scheduler)
			}
			if s.MaxUpdate == nil || s.MaxUpdateParam == nil {
				t.Errorf("no largest update reported")
			}
		})
	}
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// findingsOf lists the error and warning findings of check on a checkpoint.
func findingsOf(fs []inspect.Finding, r *inspect.Result, check string) []inspect.Finding {
	var out []inspect.Finding
	for _, f := range append(append([]inspect.Finding(nil), fs...), r.Findings...) {
		if f.Check == check {
			out = append(out, f)
		}
	}
	return out
}

// TestPoisonedOptimizerFindings: each poisoned variant gives its finding,
// naming the parameter; the healthy checkpoint gives none.
func TestPoisonedOptimizerFindings(t *testing.T) {
	dir, _ := fixtures(t)
	cases := []struct {
		dir, check, severity, want string
	}{
		{"poison-nan", inspect.CheckNonFinite, "error", "exp_avg of model.layers.1.self_attn.k_proj.bias holds 2 NaN"},
		{"poison-negative", optim.CheckOptimizer, "error", "exp_avg_sq of model.layers.0.mlp.up_proj.weight holds 3 negative values"},
		{"poison-shape", optim.CheckOptimizer, "error", "the optimizer state of model.layers.0.self_attn.q_proj.weight has shape [4 8] but the parameter has shape [8 8]"},
		{"poison-step", optim.CheckOptimizer, "warning", "is 6 but trainer_state.json's global_step is 9"},
	}
	for _, c := range cases {
		t.Run(c.dir, func(t *testing.T) {
			_, r, fs := analyze(t, filepath.Join(dir, c.dir))
			found := false
			for _, f := range findingsOf(fs, r, c.check) {
				if f.Severity == c.severity && strings.Contains(f.Message, c.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s %s finding saying %q in %+v %+v", c.severity, c.check, c.want, fs, r.Findings)
			}
		})
	}
	_, r, fs := analyze(t, filepath.Join(dir, "checkpoint-6"))
	for _, f := range append(fs, r.Findings...) {
		if f.Severity == "error" || f.Check == optim.CheckOptimizer {
			t.Errorf("healthy checkpoint: %+v", f)
		}
	}
}

// copyDir copies the files of src into a new temporary directory.
func copyDir(t *testing.T, src string, skip ...string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if slices.Contains(skip, e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestNamesWithoutTheOrder: a model_type outside the Llama family falls back
// to shapes (a parameter is named only when its shape is unique among the
// weights and among the optimizer's parameters, name_source "shape"); an
// optimizer.pt given directly takes the names of the weights beside it, and
// alone is known by ids. The naming says which happened.
func TestNamesWithoutTheOrder(t *testing.T) {
	dir, want := fixtures(t)
	d := copyDir(t, filepath.Join(dir, "checkpoint-6"))
	cfg := `{"model_type": "gpt2", "tie_word_embeddings": false}`
	if err := os.WriteFile(filepath.Join(d, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s, _, _ := analyze(t, d)
	if !strings.Contains(s.Naming, `model_type "gpt2" is not of the Llama family`) {
		t.Errorf("naming %q", s.Naming)
	}
	shapes := map[string]int{}
	for _, p := range want["checkpoint-6"].Params {
		shapes[string(mustJSON(p.Shape))]++
	}
	named, uniques := 0, 0
	for i, p := range s.Params {
		wp := want["checkpoint-6"].Params[i]
		unique := shapes[string(mustJSON(wp.Shape))] == 1
		switch {
		case unique && (p.Name == nil || *p.Name != wp.Name || *p.NameSource != optim.SourceShape):
			t.Errorf("%s has a unique shape %v: named %v", wp.Name, wp.Shape, deref(p.Name))
		case !unique && p.Name != nil:
			t.Errorf("%s shares its shape %v: named %q all the same", wp.Name, wp.Shape, *p.Name)
		}
		if p.Name != nil {
			named++
		}
		if unique {
			uniques++
		}
	}
	// Every shape of the two-layer fixture is held twice (its layers; the
	// embedding and lm_head), so nothing may be named.
	if named != uniques {
		t.Errorf("%d of %d named by shape, %d shapes unique", named, len(s.Params), uniques)
	}

	s, _, _ = analyze(t, filepath.Join(dir, "checkpoint-6", "optimizer.pt"))
	if p := s.Params[3]; p.Name == nil || *p.Name != want["checkpoint-6"].Params[3].Name {
		t.Errorf("optimizer.pt given directly: param 3 named %v (%s)", deref(p.Name), s.Naming)
	}
	alone := copyDir(t, filepath.Join(dir, "checkpoint-6"), "pytorch_model.bin", "config.json")
	s, _, _ = analyze(t, filepath.Join(alone, "optimizer.pt"))
	for _, p := range s.Params {
		if p.Name != nil || p.UpdateRatio != nil {
			t.Errorf("an optimizer.pt alone: param %d named %v, ratio %v", p.ID, deref(p.Name), p.UpdateRatio)
		}
	}
	if !strings.Contains(s.Naming, "known by id only") {
		t.Errorf("naming %q", s.Naming)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
