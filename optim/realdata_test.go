package optim_test

import (
	"encoding/json"
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

// TestRealOptimizerFiles reads the optimizer.pt files of the shared corpus
// (SGD with momentum, torch Adam, transformers' old AdamW with an int step)
// given directly: the algorithm, the groups' lr and sizes, every state entry,
// and every state tensor's element and nonfinite counts as torch counted
// them (truth.json), each tensor belonging to the parameter and key of its
// key path.
func TestRealOptimizerFiles(t *testing.T) {
	dir := testenv.RealdataTorch(t)
	b, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth map[string]struct {
		Tensors []struct {
			Name               string
			Numel, NaN, PosInf uint64
			NegInf             uint64 `json:"neginf"`
		}
		Optimizer struct {
			NStateEntries int `json:"n_state_entries"`
			ParamGroups   []struct {
				LR     float64 `json:"lr"`
				Params struct {
					N int `json:"n_params"`
				} `json:"params"`
			} `json:"param_groups"`
		}
	}
	if err := json.Unmarshal(b, &truth); err != nil {
		t.Fatal(err)
	}
	algorithms := map[string]string{
		"PdAlbedo__Recognition_using_Deep_Networks/optimizer.pt": "sgd",
		"Sujay510__MiniLLM-Architecture/optimizer.pt":            "adam",
		"Velihh__ML_text/optimizer.pt":                           "adam",
	}
	for rel, want := range truth {
		if !strings.HasSuffix(rel, "/optimizer.pt") {
			continue
		}
		t.Run(rel, func(t *testing.T) {
			s, r, _ := analyze(t, filepath.Join(dir, rel))
			c := r.Checkpoint
			if s.Algorithm != algorithms[rel] {
				t.Errorf("algorithm %q, want %q", s.Algorithm, algorithms[rel])
			}
			if len(s.Groups) != len(want.Optimizer.ParamGroups) {
				t.Fatalf("%d groups, want %d", len(s.Groups), len(want.Optimizer.ParamGroups))
			}
			for i, g := range want.Optimizer.ParamGroups {
				if *s.Groups[i].LR != g.LR || len(s.Groups[i].Params) != g.Params.N {
					t.Errorf("group %d: lr %g, %d params; want %g, %d", i, *s.Groups[i].LR, len(s.Groups[i].Params), g.LR, g.Params.N)
				}
			}
			withState := 0
			for _, p := range s.Params {
				if len(p.State) > 0 || p.Step != nil {
					withState++
				}
			}
			if withState != want.Optimizer.NStateEntries {
				t.Errorf("%d parameters with state, want %d", withState, want.Optimizer.NStateEntries)
			}
			stats := map[string]*inspect.TensorStats{}
			for _, ts := range r.Tensors {
				stats[ts.Name] = ts
			}
			byName := map[string]*formats.Tensor{}
			for _, tt := range c.Tensors {
				byName[tt.Name] = tt
			}
			for _, wt := range want.Tensors {
				ts, tt := stats[wt.Name], byName[wt.Name]
				if ts == nil || tt == nil {
					t.Errorf("%s: not read", wt.Name)
					continue
				}
				if ts.Count != wt.Numel || ts.NaN != wt.NaN || ts.PosInf != wt.PosInf || ts.NegInf != wt.NegInf {
					t.Errorf("%s: %d elements, NaN %d, +Inf %d, -Inf %d; torch: %d, %d, %d, %d", wt.Name, ts.Count, ts.NaN, ts.PosInf, ts.NegInf, wt.Numel, wt.NaN, wt.PosInf, wt.NegInf)
				}
				parts := strings.SplitN(wt.Name, ".", 3)
				if parts[2] == "step" {
					continue
				}
				p, key, ok := s.ParamOf(tt)
				if !ok || key != parts[2] || "state."+itoa(p.ID) != parts[0]+"."+parts[1] {
					t.Errorf("%s: belongs to %v %q", wt.Name, p, key)
				}
			}
			// Beside model.pt and without config.json, names come from unique
			// shapes only, each the shape of the weight it names.
			for _, p := range s.Params {
				if p.Name == nil {
					continue
				}
				if *p.NameSource != optim.SourceShape || !slices.Equal(p.Weight.Shape, p.Shape) {
					t.Errorf("param %d named %s by %s: weight %v, state %v", p.ID, *p.Name, *p.NameSource, p.Weight.Shape, p.Shape)
				}
			}
			if rel == "Velihh__ML_text/optimizer.pt" {
				// transformers' AdamW keeps an int step; the trainer state agrees.
				for _, p := range s.Params {
					if len(p.State) > 0 && (p.Step == nil || *p.Step != 19000) {
						t.Errorf("param %d: step %v, want 19000", p.ID, p.Step)
					}
				}
			}
		})
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
